//! Latency histogram.
