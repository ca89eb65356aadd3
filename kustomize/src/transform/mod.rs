//! TODO(KE): fill in.
