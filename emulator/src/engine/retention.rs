//! Retention: the engine keeps the most recent messages and calls (up to the
//! `Behaviour` limits) and counts what it evicts; ongoing calls are never evicted.

use super::Engine;
use crate::domain::call::Call;
use crate::domain::ids::MessageId;
use crate::domain::message::OutboundMessage;

use hashbrown::HashTable;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

/// The retained messages, oldest first, found by id.
///
/// Each message's id is stored once, in the message: the index holds positions (8 bytes
/// a message), not a copy of the id as a map key plus another in an order list. Written to
/// snapshots as before: the map `messages` by id and the list `message_order`.
#[derive(Clone, Default)]
pub struct Messages {
    /// Oldest first. Boxed: evicting from the front moves pointers, not messages.
    order: VecDeque<Box<OutboundMessage>>,
    /// Absolute positions (`base` + index in `order`), hashed by the message's id.
    index: HashTable<u64>,
    /// The absolute position of `order[0]`.
    base: u64,
    /// FxHash (rustc-hash): ids are hashed twice a send, and they are the emulator's own
    /// (a snapshot's at most), not text a client chooses to collide.
    hasher: rustc_hash::FxBuildHasher,
}

impl std::fmt::Debug for Messages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.order.iter()).finish()
    }
}

impl Messages {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn slot(&self, id: &str) -> Option<usize> {
        let (order, base) = (&self.order, self.base);
        self.index
            .find(self.hasher.hash_one(id), |&p| {
                order[(p - base) as usize].id.as_str() == id
            })
            .map(|&p| (p - base) as usize)
    }

    pub fn get(&self, id: &MessageId) -> Option<&OutboundMessage> {
        self.slot(id.as_str()).map(|i| &*self.order[i])
    }

    pub fn get_mut(&mut self, id: &MessageId) -> Option<&mut OutboundMessage> {
        self.slot(id.as_str()).map(|i| &mut *self.order[i])
    }

    /// Oldest first.
    pub fn values(&self) -> impl Iterator<Item = &OutboundMessage> {
        self.order.iter().map(|m| &**m)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut OutboundMessage> {
        self.order.iter_mut().map(|m| &mut **m)
    }

    /// Appends a message; one with the id of a kept message replaces it in its place.
    pub fn push(&mut self, m: OutboundMessage) {
        if let Some(i) = self.slot(m.id.as_str()) {
            *self.order[i] = m;
            return;
        }
        let (order, base, hasher) = (&self.order, self.base, &self.hasher);
        self.index.insert_unique(
            hasher.hash_one(m.id.as_str()),
            base + order.len() as u64,
            |&p| hasher.hash_one(order[(p - base) as usize].id.as_str()),
        );
        self.order.push_back(Box::new(m));
    }

    /// Removes the oldest message.
    pub fn pop_front(&mut self) -> Option<Box<OutboundMessage>> {
        let m = self.order.pop_front()?;
        let base = self.base;
        if let Ok(e) = self
            .index
            .find_entry(self.hasher.hash_one(m.id.as_str()), |&p| p == base)
        {
            e.remove();
        }
        self.base += 1;
        Some(m)
    }
}

/// The map `messages` of a snapshot, by id.
struct ById<'a>(&'a VecDeque<Box<OutboundMessage>>);

impl Serialize for ById<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for msg in self.0 {
            m.serialize_entry(msg.id.as_str(), &**msg)?;
        }
        m.end()
    }
}

/// The list `message_order` of a snapshot.
struct Order<'a>(&'a VecDeque<Box<OutboundMessage>>);

impl Serialize for Order<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut q = s.serialize_seq(Some(self.0.len()))?;
        for msg in self.0 {
            q.serialize_element(msg.id.as_str())?;
        }
        q.end()
    }
}

impl Serialize for Messages {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("messages", &ById(&self.order))?;
        m.serialize_entry("message_order", &Order(&self.order))?;
        m.end()
    }
}

#[derive(Deserialize)]
struct Stored {
    messages: HashMap<MessageId, OutboundMessage>,
    message_order: VecDeque<MessageId>,
}

impl<'de> Deserialize<'de> for Messages {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Stored {
            mut messages,
            message_order,
        } = Stored::deserialize(d)?;
        let mut out = Messages::default();
        for id in message_order {
            if let Some(m) = messages.remove(&id) {
                out.push(m);
            }
        }
        // A message the order does not name was never listed nor evicted: keep it, after
        // the listed ones, in the order it was sent.
        let mut rest: Vec<OutboundMessage> = messages.into_values().collect();
        rest.sort_by(|a, b| (a.sent_at_ms, &a.id).cmp(&(b.sent_at_ms, &b.id)));
        for m in rest {
            out.push(m);
        }
        Ok(out)
    }
}

impl Engine {
    pub(crate) fn remember_message(&mut self, m: OutboundMessage) {
        self.st.messages.push(m);
        while self.st.messages.len() > self.behaviour.message_retention {
            if self.st.messages.pop_front().is_some() {
                self.st.messages_evicted += 1;
            }
        }
    }
    pub(crate) fn remember_call(&mut self, c: Call) {
        self.st.call_order.push_back(c.id.clone());
        self.st.calls.insert(c.id.clone(), c);
        // Only ended calls are evicted: an ongoing call must stay reachable.
        while self.st.call_order.len() > self.behaviour.call_retention {
            let Some(pos) = self
                .st
                .call_order
                .iter()
                .position(|id| self.st.calls.get(id).is_none_or(|c| !c.is_ongoing()))
            else {
                break;
            };
            if let Some(old) = self.st.call_order.remove(pos) {
                self.st.calls.remove(&old);
                self.st.calls_evicted += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Messages;
    use crate::domain::ids::MessageId;
    use crate::domain::message::{MessageStatus, OutboundMessage};
    use serde_json::{json, Value};

    fn message(n: u64) -> OutboundMessage {
        OutboundMessage {
            id: MessageId(format!("wamid.{n}")),
            phone_number_id: "106540352242922".into(),
            to: format!("1631555{n:04}").into(),
            kind: "text".into(),
            sent_at_ms: 1_000 + n,
            status: MessageStatus::Delivered,
            error_code: None,
            button: None,
            template: None,
            is_permission_request: false,
            biz_opaque_callback_data: None,
            request_lifetime: None,
            graph_version: Default::default(),
            text: Some(format!("hello {n}")),
        }
    }

    #[test]
    fn evicted_messages_are_gone_and_the_rest_are_found_by_id_in_order() {
        let mut m = Messages::default();
        for n in 0..200 {
            m.push(message(n));
            if m.len() > 50 {
                let old = m.pop_front().expect("a message");
                assert_eq!(old.id.as_str(), format!("wamid.{}", n - 50));
            }
        }
        assert_eq!(m.len(), 50);
        assert!(m.get(&MessageId("wamid.149".into())).is_none());
        for n in 150..200 {
            let id = MessageId(format!("wamid.{n}"));
            assert_eq!(m.get(&id).map(|x| x.sent_at_ms), Some(1_000 + n));
        }
        let ids: Vec<u64> = m.values().map(|x| x.sent_at_ms - 1_000).collect();
        assert_eq!(ids, (150..200).collect::<Vec<_>>());
        m.get_mut(&MessageId("wamid.160".into())).unwrap().status = MessageStatus::Read;
        assert_eq!(
            m.values().nth(10).map(|x| x.status),
            Some(MessageStatus::Read)
        );
    }

    #[test]
    fn snapshots_keep_the_map_by_id_and_the_order_list() {
        let mut m = Messages::default();
        for n in [3, 1, 2] {
            m.push(message(n));
        }
        let v = serde_json::to_value(&m).unwrap();
        let by_id = |n: u64| serde_json::to_value(message(n)).unwrap();
        assert_eq!(
            v,
            json!({
                "messages": {"wamid.1": by_id(1), "wamid.2": by_id(2), "wamid.3": by_id(3)},
                "message_order": ["wamid.3", "wamid.1", "wamid.2"],
            })
        );
        let back: Messages = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), v);
        assert_eq!(back.get(&MessageId("wamid.1".into())), Some(&message(1)));
        // A message the order does not name is kept, after the listed ones.
        let mut partial = v;
        partial["message_order"] = json!(["wamid.2"]);
        let back: Messages = serde_json::from_value(partial).unwrap();
        let order: Vec<Value> = back.values().map(|x| json!(x.id)).collect();
        assert_eq!(
            order,
            vec![json!("wamid.2"), json!("wamid.1"), json!("wamid.3")]
        );
    }
}
