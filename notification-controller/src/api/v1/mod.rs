//! notification.toolkit.fluxcd.io/v1: Receiver (being written).
