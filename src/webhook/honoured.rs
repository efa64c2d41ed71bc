//! The exceptions the workload webhook honours, kept current in memory from
//! watches: nothing is looked up while a request waits.
//!
//! An exception is in the index while it is Active by the same lifecycle the
//! controller uses, recomputed here from the object (approvals verified from
//! the annotations, never from `status`), the compensating controls' state and
//! the clock. Expiry is checked again at every decision, so an exception stops
//! counting at `expiresAt` even if no event arrives.

use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::{
    Api, Client, ResourceExt,
    runtime::{
        WatchStreamExt,
        reflector::{self, Store, reflector},
        watcher::{self, Event, watcher},
    },
};
use tracing::{debug, warn};

use crate::{
    api::{CompensatingControl, Phase, SecurityException},
    config::Config,
    controller::ControlBoard,
    policy::{
        approval::{self, SealKey},
        lifecycle,
        matching::{ExceptionIndex, HonouredException},
    },
};

/// What deciding whether an exception is honoured needs.
#[derive(Clone)]
pub struct Honour {
    /// The operator's configuration.
    pub config: Arc<Config>,
    /// The key approvals are sealed with.
    pub seal_key: Arc<SealKey>,
    /// The compensating controls' evaluations.
    pub control_board: Arc<ControlBoard>,
    /// The CompensatingControls.
    pub controls: Store<CompensatingControl>,
}

impl Honour {
    /// The exception as the index holds it, if it is in force at `now`
    /// (apart from expiry, which the index checks at each decision).
    pub fn honoured(
        &self,
        exception: &SecurityException,
        now: Timestamp,
    ) -> Option<HonouredException> {
        let namespace = exception.namespace()?;
        let controls = self.control_board.states_for(exception, &self.controls)?;
        let verdict = approval::verify(exception, &self.seal_key, &self.config);
        let approval = lifecycle::approval_state(&verdict);
        let evaluation = lifecycle::evaluate(exception, &approval, &controls, &self.config, now);
        if evaluation.phase != Phase::Active {
            return None;
        }
        match HonouredException::new(&namespace, exception.name_any(), &exception.spec) {
            Ok(honoured) => Some(honoured),
            Err(error) => {
                warn!(%namespace, name = %exception.name_any(), %error, "exception not honoured: its targets do not compile");
                None
            }
        }
    }

    /// Recomputes every exception in `exceptions` into a fresh index.
    pub fn rebuild(&self, exceptions: &Store<SecurityException>, now: Timestamp) -> ExceptionIndex {
        let mut index = ExceptionIndex::new();
        for exception in exceptions.state() {
            if let Some(honoured) = self.honoured(&exception, now) {
                index.upsert(honoured);
            }
        }
        index
    }
}

/// Keeps `index` current: an exception's change updates its entry; a
/// compensating control's new evaluation, or a relist, rebuilds all.
/// Returns once the first full build is done, with a receiver whose value
/// changes whenever the index does; the work goes on in the background until
/// the process ends.
pub async fn maintain(
    client: Client,
    honour: Honour,
    index: Arc<RwLock<ExceptionIndex>>,
) -> tokio::sync::watch::Receiver<u64> {
    let (reader, writer) = reflector::store::<SecurityException>();
    let mut events = reflector(
        writer,
        watcher(
            Api::<SecurityException>::all(client),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .boxed();
    let (built_tx, built_rx) = tokio::sync::oneshot::channel();
    let mut built_tx = Some(built_tx);
    let mut control_changes = honour.control_board.subscribe();
    let (changes_tx, changes_rx) = tokio::sync::watch::channel(0u64);
    let announce = move || changes_tx.send_modify(|count| *count = count.wrapping_add(1));
    let replace = |fresh: ExceptionIndex, index: &RwLock<ExceptionIndex>| {
        if let Ok(mut index) = index.write() {
            *index = fresh;
        }
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                event = events.next() => match event {
                    None => break,
                    Some(Err(error)) => warn!(%error, "SecurityException watch error; retrying"),
                    Some(Ok(Event::InitDone)) => {
                        replace(honour.rebuild(&reader, Timestamp::now()), &index);
                        announce();
                        if let Some(tx) = built_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Some(Ok(Event::Apply(exception))) => {
                        let honoured = honour.honoured(&exception, Timestamp::now());
                        if let Ok(mut index) = index.write() {
                            let namespace = exception.namespace().unwrap_or_default();
                            match honoured {
                                Some(honoured) => index.upsert(honoured),
                                None => index.remove(&namespace, &exception.name_any()),
                            }
                        }
                        announce();
                        debug!(name = %exception.name_any(), "exception re-evaluated for admission");
                    }
                    Some(Ok(Event::Delete(exception))) => {
                        if let Ok(mut index) = index.write() {
                            index.remove(&exception.namespace().unwrap_or_default(), &exception.name_any());
                        }
                        announce();
                    }
                    Some(Ok(Event::Init | Event::InitApply(_))) => {}
                },
                changed = control_changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    replace(honour.rebuild(&reader, Timestamp::now()), &index);
                    announce();
                }
            }
        }
    });
    let _ = built_rx.await;
    changes_rx
}
