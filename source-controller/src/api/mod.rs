//! TODO(S2a)
