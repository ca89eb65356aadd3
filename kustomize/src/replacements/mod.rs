//! TODO(KC): fill in.
