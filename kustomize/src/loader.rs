//! TODO(KA): fill in.
