//! The request history: a bounded record of the Graph requests and their responses, in
//! the engine's state and shown at `GET /__emulator/requests` (as `admin_types::RequestLog`).
//! Not the write-ahead log of `--state` (`server/wal.rs`), which records every input.

use super::Engine;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// One Graph request and its response; bodies beyond 64 KiB are cut.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub seq: u64,
    pub at_ms: u64,
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
    pub status: u16,
    pub response: String,
}

/// The most recent Graph requests and responses, `capacity` of them; `seq` counts every
/// request, `evicted` those dropped.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RequestHistory {
    pub entries: VecDeque<RecordedRequest>,
    pub next_seq: u64,
    pub evicted: u64,
    pub capacity: usize,
}

impl RequestHistory {
    pub fn push(&mut self, mut e: RecordedRequest) {
        self.next_seq += 1;
        e.seq = self.next_seq;
        if self.capacity == 0 {
            self.evicted += 1;
            return;
        }
        self.entries.push_back(e);
        while self.entries.len() > self.capacity {
            self.entries.pop_front();
            self.evicted += 1;
        }
    }
}

impl Engine {
    /// Records a Graph request and the response it got.
    pub fn record_request(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
        status: u16,
        response: &[u8],
    ) {
        let bound = |b: &[u8]| {
            let head = &b[..b.len().min(64 * 1024)];
            // Valid UTF-8 (nearly always) is checked by the fast validator and copied once.
            let s = match std::str::from_utf8(head) {
                Ok(s) => s.to_owned(),
                Err(_) => String::from_utf8_lossy(head).into_owned(),
            };
            if b.len() > 64 * 1024 {
                format!("{s}… ({} bytes)", b.len())
            } else {
                s
            }
        };
        let e = RecordedRequest {
            seq: 0,
            at_ms: self.now(),
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            body: bound(body),
            status,
            response: bound(response),
        };
        self.st.request_history.push(e);
    }
}
