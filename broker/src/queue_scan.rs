//! The timer loop: requeues timed-out in-flight messages, releases due deferred ones,
//! and fsyncs disk queues whose `--sync-timeout` has passed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::nsqd::Nsqd;

/// Timer granularity: in-flight and deferred deadlines are honoured within this.
pub const SCAN_INTERVAL: Duration = Duration::from_millis(25);
/// How often disk queues are asked whether a timed sync is due.
const SYNC_CHECK_INTERVAL: Duration = Duration::from_millis(250);

pub async fn run(nsqd: Arc<Nsqd>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(SCAN_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sync = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let now = std::time::Instant::now();
        for ch in nsqd.all_channels() {
            ch.process_timers(now);
        }
        if last_sync.elapsed() >= SYNC_CHECK_INTERVAL {
            last_sync = Instant::now();
            for topic in nsqd.topics() {
                let r = topic.sync_if_due();
                if r.is_err() {
                    nsqd.note_storage_result(&r);
                }
                for ch in topic.channels() {
                    let r = ch.sync_if_due();
                    if r.is_err() {
                        nsqd.note_storage_result(&r);
                    }
                }
            }
        }
    }
}
