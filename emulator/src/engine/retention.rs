//! Retention: the engine keeps the most recent messages and calls (up to the
//! `Behaviour` limits) and counts what it evicts; ongoing calls are never evicted.

use super::Engine;
use crate::domain::call::Call;
use crate::domain::message::OutboundMessage;

impl Engine {
    pub(crate) fn remember_message(&mut self, m: OutboundMessage) {
        self.st.message_order.push_back(m.id.clone());
        self.st.messages.insert(m.id.clone(), Box::new(m));
        while self.st.message_order.len() > self.behaviour.message_retention {
            if let Some(old) = self.st.message_order.pop_front() {
                self.st.messages.remove(&old);
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
