//! TODO(S2b)
