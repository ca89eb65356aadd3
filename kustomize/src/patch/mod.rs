//! TODO(KB): fill in.
