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
    ///
    /// At capacity the oldest entry is overwritten in place: its strings keep their
    /// buffers, so a full log records without allocating or freeing (the evicted
    /// entry's memory is long cold, and freeing it cost more than the rest of the record).
    pub fn record_request(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
        status: u16,
        response: &[u8],
    ) {
        let at_ms = self.now();
        let h = &mut self.st.request_history;
        if h.capacity == 0 || h.entries.len() < h.capacity {
            let mut e = RecordedRequest {
                seq: 0,
                at_ms,
                method: String::new(),
                path: String::new(),
                query: String::new(),
                body: String::new(),
                status,
                response: String::new(),
            };
            fill(&mut e, method, path, query, body, response);
            h.push(e);
            return;
        }
        let Some(mut e) = h.entries.pop_front() else {
            return;
        };
        h.evicted += 1;
        e.at_ms = at_ms;
        e.status = status;
        fill(&mut e, method, path, query, body, response);
        h.push(e);
    }
}

/// Writes a request into an entry, reusing its strings' buffers; bodies beyond 64 KiB are
/// cut and say how long they were.
fn fill(
    e: &mut RecordedRequest,
    method: &str,
    path: &str,
    query: &str,
    body: &[u8],
    response: &[u8],
) {
    for (to, from) in [
        (&mut e.method, method),
        (&mut e.path, path),
        (&mut e.query, query),
    ] {
        to.clear();
        to.push_str(from);
    }
    bound(&mut e.body, body);
    bound(&mut e.response, response);
}

fn bound(to: &mut String, b: &[u8]) {
    to.clear();
    let head = &b[..b.len().min(64 * 1024)];
    // Valid UTF-8 (nearly always) is checked by the fast validator and copied once.
    match std::str::from_utf8(head) {
        Ok(s) => to.push_str(s),
        Err(_) => to.push_str(&String::from_utf8_lossy(head)),
    }
    if b.len() > 64 * 1024 {
        use std::fmt::Write;
        let _ = write!(to, "… ({} bytes)", b.len());
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ClockMode, Engine};
    use crate::domain::tenant::{Behaviour, Tenants};

    #[test]
    fn a_full_log_overwrites_its_oldest_entry_with_the_whole_new_request() {
        let behaviour = Behaviour {
            request_history_capacity: 2,
            ..Behaviour::default()
        };
        let mut e = Engine::new(Tenants::default(), behaviour, 1, ClockMode::Virtual, 5_000);
        e.record_request(
            "POST",
            "/a",
            "x=1",
            b"first body, longer than the rest",
            200,
            b"{}",
        );
        e.record_request("GET", "/b", "", b"", 404, b"{\"error\":{}}");
        let long = vec![b'z'; 70 * 1024];
        e.record_request("PUT", "/c", "q", &long, 201, b"ok");
        let h = &e.st.request_history;
        assert_eq!((h.next_seq, h.evicted, h.entries.len()), (3, 1, 2));
        let last = &h.entries[1];
        assert_eq!(
            (last.seq, last.method.as_str(), last.path.as_str()),
            (3, "PUT", "/c")
        );
        assert_eq!(
            (last.query.as_str(), last.status, last.response.as_str()),
            ("q", 201, "ok")
        );
        assert_eq!(last.body.len(), 64 * 1024 + "… (71680 bytes)".len());
        assert!(last.body.ends_with("z… (71680 bytes)"));
        assert_eq!((h.entries[0].seq, h.entries[0].body.as_str()), (2, ""));
    }
}
