//! The compact store answers as the maps it replaced: a model of plain maps driven by
//! the same arbitrary operations, and snapshots that round-trip.

use super::*;
use proptest::prelude::*;
use serde_json::{json, Value};

const DAY: u64 = 24 * 3600 * 1000;
const START: u64 = 1_767_225_600_000;
const PHONES: [&str; 4] = ["106540352242922", "110972043181256", "3", "4"];
/// Plain numbers, a leading zero and a non-number (interned), a very long number.
const WAS: [&str; 5] = [
    "16315550001",
    "447700900002",
    "016315550003",
    "x/1",
    "99999999999999999999",
];

/// The maps the store replaced, keyed as snapshots key them.
#[derive(Debug, Default, Clone)]
struct Model {
    users: BTreeMap<String, User>,
    windows: BTreeMap<String, u64>,
    exchanges: BTreeMap<String, u64>,
    conversations: BTreeMap<String, (String, u64)>,
}

#[derive(Debug, Clone)]
enum Op {
    Fresh(usize),
    Named(usize, String),
    RemoveUser(usize),
    Window(usize, usize),
    Exchange(usize, usize),
    /// A window or mark cleared (as an undo clears one).
    Unset(usize, usize, bool),
    Conversation(usize, usize, usize, u128),
    ClearWindows(usize),
    Advance(u64),
    Sweep,
    RoundTrip,
}

fn op() -> impl Strategy<Value = Op> {
    let (w, p) = (0..WAS.len(), 0..PHONES.len());
    prop_oneof![
        w.clone().prop_map(Op::Fresh),
        (w.clone(), "[a-z]{1,3}").prop_map(|(w, n)| Op::Named(w, n)),
        w.clone().prop_map(Op::RemoveUser),
        (w.clone(), p.clone()).prop_map(|(w, p)| Op::Window(w, p)),
        (w.clone(), p.clone()).prop_map(|(w, p)| Op::Exchange(w, p)),
        (w.clone(), p.clone(), any::<bool>()).prop_map(|(w, p, x)| Op::Unset(w, p, x)),
        (w.clone(), p, 0..5usize, any::<u128>())
            .prop_map(|(w, p, c, id)| Op::Conversation(w, p, c, id)),
        w.prop_map(Op::ClearWindows),
        prop_oneof![0..10_000u64, 0..3 * DAY, 40 * DAY..60 * DAY].prop_map(Op::Advance),
        Just(Op::Sweep),
        Just(Op::RoundTrip),
    ]
}

/// The categories: the four a row stores, and one it cannot.
fn category(c: usize) -> &'static str {
    ["service", "marketing", "utility", "authentication", "other"][c]
}

fn latest() -> ClientVersion {
    VersionRules::default().latest
}

fn check(store: &Recipients, model: &Model) -> Result<(), TestCaseError> {
    for wa in WAS {
        let w = WaId::from(wa);
        prop_assert_eq!(store.user(&w), model.users.get(wa).cloned(), "user {}", wa);
        for p in PHONES {
            let phone = PhoneNumberId::from(p);
            let key = format!("{p}/{wa}");
            prop_assert_eq!(store.window(&phone, &w), model.windows.get(&key).copied());
            prop_assert_eq!(
                store.exchange(&phone, &w),
                model.exchanges.get(&key).copied()
            );
            for c in 0..5 {
                let got = store
                    .conversation(&phone, &w, category(c))
                    .map(|(id, exp)| {
                        let mut buf = [0u8; 32];
                        (id.text(&mut buf).to_owned(), exp)
                    });
                let want = model
                    .conversations
                    .get(&format!("{key}/{}", category(c)))
                    .cloned();
                prop_assert_eq!(got, want);
            }
        }
    }
    let snapshot = serde_json::to_value(store).unwrap();
    prop_assert_eq!(snapshot, model_json(model));
    Ok(())
}

fn model_json(m: &Model) -> Value {
    json!({
        "users": m.users,
        "windows": m.windows,
        "phone_exchanges": m.exchanges,
        "conversations": m.conversations,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every answer, and the snapshot, after every step, is the maps' answer.
    #[test]
    fn the_store_answers_as_the_maps(ops in proptest::collection::vec(op(), 1..60)) {
        let mut store = Recipients::default();
        let mut model = Model::default();
        let mut now = START;
        for op in ops {
            match op {
                Op::Fresh(w) => {
                    let u = fresh(&WaId::from(WAS[w]), &latest());
                    model.users.insert(WAS[w].into(), u.clone());
                    store.put_user(u);
                }
                Op::Named(w, name) => {
                    let mut u = fresh(&WaId::from(WAS[w]), &latest());
                    u.name = name;
                    model.users.insert(WAS[w].into(), u.clone());
                    store.put_user(u);
                }
                Op::RemoveUser(w) => {
                    model.users.remove(WAS[w]);
                    if let Some(k) = store.key(&WaId::from(WAS[w])) {
                        store.remove_user_key(k);
                    }
                }
                Op::Window(w, p) => {
                    model.windows.insert(format!("{}/{}", PHONES[p], WAS[w]), now);
                    store.set_time(&PhoneNumberId::from(PHONES[p]), &WaId::from(WAS[w]), false, now);
                }
                Op::Exchange(w, p) => {
                    model.exchanges.insert(format!("{}/{}", PHONES[p], WAS[w]), now);
                    store.set_time(&PhoneNumberId::from(PHONES[p]), &WaId::from(WAS[w]), true, now);
                }
                Op::Unset(w, p, exchange) => {
                    let pair = format!("{}/{}", PHONES[p], WAS[w]);
                    if exchange { model.exchanges.remove(&pair) } else { model.windows.remove(&pair) };
                    let key = store.key_or_intern(&WaId::from(WAS[w]));
                    let phone = store.phone_or_intern(&PhoneNumberId::from(PHONES[p]));
                    store.set_time_at(key, phone, exchange, None);
                }
                Op::Conversation(w, p, c, id) => {
                    // Mostly the emulator's 32 hex digits; sometimes another string.
                    let text = if id % 7 == 0 { format!("conv-{id}") } else { format!("{id:032x}") };
                    let expires = now + DAY;
                    model.conversations.insert(format!("{}/{}/{}", PHONES[p], WAS[w], category(c)), (text.clone(), expires));
                    let conv = Conversation { category: Category::of(category(c)), id: ConvId::of(&text), expires };
                    store.update_pair(&PhoneNumberId::from(PHONES[p]), &WaId::from(WAS[w]), |x| {
                        x.conversations.retain(|o| o.category != conv.category);
                        x.conversations.push(conv);
                    });
                }
                Op::ClearWindows(w) => {
                    let wa = WaId::from(WAS[w]);
                    model.windows.retain(|k, _| !k.ends_with(&format!("/{}", WAS[w])));
                    let mut pairs = store.pairs(&wa);
                    for p in &mut pairs {
                        p.window = None;
                    }
                    store.put_pairs(&wa, pairs);
                }
                Op::Advance(ms) => now += ms,
                Op::Sweep => {
                    model.windows.retain(|_, t| now.saturating_sub(*t) < DAY);
                    model.exchanges.retain(|_, t| now.saturating_sub(*t) < 30 * DAY);
                    model.conversations.retain(|_, (_, exp)| *exp > now);
                    store.drop_expired(now, DAY, 30 * DAY);
                }
                Op::RoundTrip => {
                    let v = serde_json::to_value(&store).unwrap();
                    store = serde_json::from_value(v).unwrap();
                }
            }
            check(&store, &model)?;
        }
    }
}

#[test]
fn a_snapshot_reads_back_to_the_same_json() {
    let v = json!({
        "users": {
            "16315550001": fresh(&WaId::from("16315550001"), &latest()),
            "447700900002": {"wa_id": "447700900002", "user_id": "GB.1", "name": "Ana",
                "platform": "ios", "version": "2.25.0", "username": "ana"},
            "0123": fresh(&WaId::from("0123"), &latest()),
        },
        "windows": {"106540352242922/16315550001": START, "110972043181256/16315550001": START,
            "106540352242922/0123": START - 5},
        "phone_exchanges": {"106540352242922/16315550001": START + 1,
            "106540352242922/447700900002": START - 40 * DAY},
        "conversations": {
            "106540352242922/16315550001/service": ["0123456789abcdef0123456789abcdef", START + DAY],
            "106540352242922/16315550001/marketing": ["0123456789abcdef0123456789abcdee", START + DAY],
            "110972043181256/447700900002/utility": ["not hex", START + DAY]
        }
    });
    let store: Recipients = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(serde_json::to_value(&store).unwrap(), v);
    // The plain recipients fit rows; two conversations with one number and a time 40
    // days before the rest do not.
    assert_eq!(store.wide_rows(), 2);
    assert_eq!(store.user_count(), 3);
}

#[test]
fn a_fresh_user_costs_a_row_and_a_changed_one_keeps_its_fields() {
    let mut s = Recipients::default();
    let wa = WaId::from("16315550001");
    let mut u = fresh(&wa, &latest());
    s.put_user(u.clone());
    assert!(s.users.is_empty(), "stored as a flag");
    assert_eq!(s.user(&wa), Some(u.clone()));
    u.username = Some("ana".into());
    s.put_user(u.clone());
    assert_eq!(s.user(&wa), Some(u.clone()));
    // A version equal in number but not in text is not the fresh one.
    u.username = None;
    u.version = ClientVersion::parse(&format!("{}.0", latest())).unwrap();
    s.put_user(u.clone());
    assert_eq!(
        s.user(&wa).unwrap().version.to_string(),
        u.version.to_string()
    );
}

/// A fresh user is rebuilt with the BSUID the number always had (`bsuid_for` writes it
/// by hand now; this is the format it had).
#[test]
fn a_rebuilt_user_has_the_bsuid_of_the_number() {
    for wa in ["16315550001", "447700900002", "5511987654321", "0", "1"] {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in wa.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        let country = crate::domain::ids::country_of(wa);
        let want = format!("{country}.1{:018}", h % 1_000_000_000_000_000_000);
        assert_eq!(fresh(&WaId::from(wa), &latest()).user_id, want);
    }
}
