//! notification.toolkit.fluxcd.io/v1beta3: Provider and Alert (being written).
