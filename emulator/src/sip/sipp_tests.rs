//! sipp tests
