//! A service that follows `NOTIFY`s, tested in both families by scripting
//! `MockListener`: notifications, then a reconnect that forces a full
//! re-read, because notifications sent meanwhile may have been missed.

use uno_db_core::{ErrorKind, ListenerEvent, Notification, Result};

/// What the watcher did with each event, for the tests to check.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    Refresh(String),
    ReloadEverything,
}

fn act(event: &ListenerEvent) -> Action {
    match event {
        ListenerEvent::Notification(n) => Action::Refresh(n.payload().to_owned()),
        _ => Action::ReloadEverything,
    }
}

fn script() -> Vec<ListenerEvent> {
    vec![
        Notification::new("jobs", "7", 42).into(),
        ListenerEvent::Reconnected,
        Notification::new("jobs", "8", 43).into(),
    ]
}

fn expected() -> Vec<Action> {
    vec![
        Action::Refresh("7".to_owned()),
        Action::ReloadEverything,
        Action::Refresh("8".to_owned()),
    ]
}

mod blocking {
    use std::sync::Arc;
    use std::time::Duration;

    use uno_db_core::blocking::{Engine, Listener, MockEngine, MockListener};

    use super::*;

    /// Follows `jobs` until `limit` actions or a quiet wait.
    fn watch(engine: &dyn Engine, limit: usize) -> Result<Vec<Action>> {
        let mut listener = engine.listener()?;
        listener.listen("jobs")?;
        let mut actions = Vec::new();
        while actions.len() < limit {
            match listener.next_timeout(Duration::from_secs(1))? {
                Some(event) => actions.push(act(&event)),
                None => break,
            }
        }
        Ok(actions)
    }

    fn scripted_listener() -> MockListener {
        let mut listener = MockListener::new();
        listener
            .expect_listen()
            .withf(|channel| channel == "jobs")
            .times(1)
            .returning(|_| Ok(()));
        let mut events = script().into_iter();
        listener
            .expect_next_timeout()
            .returning(move |_| Ok(events.next()));
        listener
    }

    #[test]
    fn a_reconnect_reloads_everything() {
        let mut engine = MockEngine::new();
        engine
            .expect_listener()
            .times(1)
            .returning(|| Ok(Box::new(scripted_listener()) as Box<dyn Listener>));
        let engine: Arc<dyn Engine> = Arc::new(engine);
        assert_eq!(watch(&*engine, 10).unwrap(), expected());
    }

    #[test]
    fn a_failed_reconnect_is_an_error_the_caller_sees() {
        let mut listener = MockListener::new();
        listener.expect_listen().returning(|_| Ok(()));
        listener
            .expect_next_timeout()
            .returning(|_| Err(uno_db_core::Error::new(ErrorKind::PoolTimeout)));
        let mut engine = MockEngine::new();
        let mut listener = Some(listener);
        engine
            .expect_listener()
            .returning(move || Ok(Box::new(listener.take().unwrap()) as Box<dyn Listener>));
        let error = watch(&engine, 10).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::PoolTimeout);
        assert!(error.is_transient());
    }

    /// The iterator hands out events and errors, goes on after a failed
    /// reconnect, and ends at a quiet wait.
    #[test]
    fn the_iterator_ends_at_a_quiet_wait() {
        let mut listener = MockListener::new();
        let mut events = vec![
            Ok(Some(script().remove(0))),
            Err(uno_db_core::Error::new(ErrorKind::PoolTimeout)),
            Ok(Some(ListenerEvent::Reconnected)),
            Ok(None),
        ]
        .into_iter();
        listener
            .expect_next_timeout()
            .withf(|quiet| *quiet == Duration::from_millis(5))
            .times(4)
            .returning(move |_| events.next().unwrap());
        let seen: Vec<std::result::Result<Action, ErrorKind>> =
            uno_db_core::blocking::ListenerIter::new(&mut listener, Duration::from_millis(5))
                .map(|event| event.map(|event| act(&event)).map_err(|e| e.kind()))
                .collect();
        assert_eq!(
            seen,
            [
                Ok(Action::Refresh("7".to_owned())),
                Err(ErrorKind::PoolTimeout),
                Ok(Action::ReloadEverything),
            ]
        );
    }
}

mod nonblocking {
    use uno_db_core::nonblocking::{Engine, Listener, MockEngine, MockListener};

    use super::*;

    /// Follows `jobs` for `limit` actions.
    async fn watch(engine: &dyn Engine, limit: usize) -> Result<Vec<Action>> {
        let mut listener = engine.listener().await?;
        listener.listen("jobs").await?;
        let mut actions = Vec::new();
        while actions.len() < limit {
            actions.push(act(&listener.next().await?));
        }
        Ok(actions)
    }

    #[tokio::test]
    async fn a_reconnect_reloads_everything() {
        let mut listener = MockListener::new();
        listener
            .expect_listen()
            .withf(|channel| channel == "jobs")
            .times(1)
            .returning(|_| Box::pin(async { Ok(()) }));
        let mut events = script().into_iter();
        listener.expect_next().times(3).returning(move || {
            let event = events.next().unwrap();
            Box::pin(async move { Ok(event) })
        });
        listener
            .expect_channels()
            .returning(|| vec!["jobs".to_owned()]);
        let mut engine = MockEngine::new();
        let mut listener = Some(listener);
        engine.expect_listener().times(1).returning(move || {
            let listener = listener.take().unwrap();
            Box::pin(async move { Ok(Box::new(listener) as Box<dyn Listener>) })
        });
        assert_eq!(watch(&engine, 3).await.unwrap(), expected());
    }

    /// The stream hands out events and errors, goes on after a failed
    /// reconnect, and ends after the engine was disposed.
    #[tokio::test]
    async fn the_stream_ends_after_the_engine_is_disposed() {
        let mut listener = MockListener::new();
        let mut events = vec![
            Ok(script().remove(0)),
            Err(uno_db_core::Error::new(ErrorKind::PoolTimeout)),
            Ok(ListenerEvent::Reconnected),
            Err(uno_db_core::Error::new(ErrorKind::PoolClosed)),
        ]
        .into_iter();
        listener.expect_next().times(4).returning(move || {
            let event = events.next().unwrap();
            Box::pin(async move { event })
        });
        let mut stream = uno_db_core::nonblocking::ListenerStream::new(Box::new(listener));
        let mut seen = Vec::new();
        loop {
            match stream.try_next().await {
                Ok(Some(event)) => seen.push(Ok(act(&event))),
                Ok(None) => break,
                Err(error) => seen.push(Err(error.kind())),
            }
        }
        assert_eq!(
            seen,
            [
                Ok(Action::Refresh("7".to_owned())),
                Err(ErrorKind::PoolTimeout),
                Ok(Action::ReloadEverything),
                Err(ErrorKind::PoolClosed),
            ]
        );
        assert!(stream.into_listener().is_none(), "the stream ended");
    }
}
