use super::*;

fn chain(n: i64) -> Vec<Event> {
    let mut previous = GENESIS.to_owned();
    (1..=n)
        .map(|sequence| {
            let mut e = Event {
                sequence,
                time: 1_000 * sequence,
                service: "group-registry".into(),
                subject: "ada@example.com".into(),
                method: "/ferry.registry.v1.RegistryService/CreateGroup".into(),
                resources: vec![format!("environments/dev/groups/g{sequence}")],
                outcome: "OK".into(),
                previous_hash: previous.clone(),
                ..Event::default()
            };
            e.hash = e.digest();
            previous = e.hash.clone();
            e
        })
        .collect()
}

fn verify(events: &[Event], head: (i64, &str)) -> Result<u64, Broken> {
    let mut v = Verifier::default();
    for e in events {
        v.check(e)?;
    }
    v.finish(head.0, head.1)
}

#[test]
fn an_intact_chain_verifies() {
    let events = chain(5);
    let head = (5, events[4].hash.clone());
    assert_eq!(verify(&events, (head.0, &head.1)), Ok(5));
    assert_eq!(verify(&[], (0, GENESIS)), Ok(0));
}

#[test]
fn every_field_is_in_the_hash() {
    let e = &chain(1)[0];
    let changed: Vec<Event> = vec![
        Event { subject: "eve".into(), ..e.clone() },
        Event { on_behalf_of: "eve".into(), ..e.clone() },
        Event { outcome: "PERMISSION_DENIED".into(), ..e.clone() },
        Event { resources: vec![], ..e.clone() },
        Event { time: e.time + 1, ..e.clone() },
        Event { step: "copy".into(), ..e.clone() },
        // Moving text from one field to the next is a different event too.
        Event { service: "group-registr".into(), subject: "yada@example.com".into(), ..e.clone() },
    ];
    for c in changed {
        assert_ne!(c.digest(), e.digest(), "{c:?}");
    }
}

#[test]
fn an_edited_event_is_named() {
    let mut events = chain(5);
    events[2].subject = "someone-else".into();
    let head = events[4].hash.clone();
    let broken = verify(&events, (5, &head)).unwrap_err();
    assert_eq!(broken.sequence, 3);
    assert!(broken.reason.contains("was changed"), "{}", broken.reason);
    // Re-hashing the edited event moves the break to the next one, which still points at
    // the original.
    events[2].hash = events[2].digest();
    let broken = verify(&events, (5, &head)).unwrap_err();
    assert_eq!(broken.sequence, 4);
    assert!(broken.reason.contains("previous_hash"), "{}", broken.reason);
}

#[test]
fn deleted_events_are_named() {
    let mut events = chain(5);
    let head = events[4].hash.clone();
    events.remove(1);
    let broken = verify(&events, (5, &head)).unwrap_err();
    assert_eq!(broken.sequence, 2);
    assert!(broken.reason.contains("events 2..2 are missing"), "{}", broken.reason);
    // The newest events deleted: the head still names the last one.
    let events = chain(5);
    let broken = verify(&events[..3], (5, &head)).unwrap_err();
    assert_eq!(broken.sequence, 4);
    assert!(broken.reason.contains("were deleted"), "{}", broken.reason);
}
