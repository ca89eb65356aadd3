//! Common Expression Language (being written).
