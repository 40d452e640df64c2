//! A channel: its queue, its consumers, and the in-flight and deferred messages that
//! make delivery at-least-once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nsq_protocol::MessageId;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::client::ClientShared;
use crate::deferred::DeferredQueue;
use crate::in_flight::{InFlight, InFlightError, InFlightQueue};
use crate::message::Message;
use crate::quantile::{E2eConfig, Quantile};
use crate::queue::{MessageQueue, QueueError};

/// Monotonic counters reported by `/stats`.
#[derive(Debug, Default)]
pub struct ChannelCounters {
    /// Messages put to the channel (deferred included, requeues excluded).
    pub message_count: AtomicU64,
    pub requeue_count: AtomicU64,
    pub timeout_count: AtomicU64,
    /// Deliveries to consumers (redeliveries included).
    pub delivered_count: AtomicU64,
    pub finish_count: AtomicU64,
}

pub struct Channel {
    pub topic_name: String,
    pub name: String,
    pub ephemeral: bool,
    queue: Mutex<MessageQueue>,
    /// Woken whenever messages are queued, so idle consumers' pumps look again.
    available: Notify,
    in_flight: Mutex<InFlightQueue>,
    deferred: Mutex<DeferredQueue>,
    consumers: Mutex<HashMap<u64, Arc<ClientShared>>>,
    consumer_count: AtomicUsize,
    paused: AtomicBool,
    deleted: AtomicBool,
    pub counters: ChannelCounters,
    /// End-to-end latency of finished messages, when percentiles are configured.
    e2e: Option<Mutex<Quantile>>,
    /// End-to-end latency of finished messages, always, for `/metrics`.
    pub latency: crate::histogram::LatencyHistogram,
}

impl Channel {
    pub fn new(
        topic_name: &str,
        name: &str,
        queue: MessageQueue,
        e2e: Option<E2eConfig>,
    ) -> Channel {
        Channel {
            topic_name: topic_name.to_string(),
            name: name.to_string(),
            ephemeral: nsq_protocol::names::is_ephemeral(name),
            queue: Mutex::new(queue),
            available: Notify::new(),
            in_flight: Mutex::new(InFlightQueue::default()),
            deferred: Mutex::new(DeferredQueue::default()),
            consumers: Mutex::new(HashMap::new()),
            consumer_count: AtomicUsize::new(0),
            paused: AtomicBool::new(false),
            deleted: AtomicBool::new(false),
            counters: ChannelCounters::default(),
            e2e: e2e.map(|c| Mutex::new(Quantile::new(c))),
            latency: crate::histogram::LatencyHistogram::default(),
        }
    }

    /// Takes a topic's messages (one lock for the whole batch); DPUB copies go to the
    /// deferred queue.
    pub fn put_batch(&self, msgs: &[Message]) -> Result<(), QueueError> {
        let mut now = None;
        let mut deferred = Vec::new();
        {
            let mut q = self.queue.lock();
            for m in msgs {
                if m.defer_ms > 0 {
                    deferred.push(m.clone());
                    continue;
                }
                q.push(m.clone())?;
            }
        }
        if !deferred.is_empty() {
            let now = *now.get_or_insert_with(Instant::now);
            let mut d = self.deferred.lock();
            for mut m in deferred {
                let due = now + Duration::from_millis(m.defer_ms);
                m.defer_ms = 0;
                d.push(m, due);
            }
        }
        self.counters
            .message_count
            .fetch_add(msgs.len() as u64, Ordering::Relaxed);
        self.available.notify_one();
        Ok(())
    }

    /// Puts a message back on the queue (REQ 0, timeout, deferred delay elapsed).
    fn requeue_now(&self, msgs: Vec<Message>) {
        if msgs.is_empty() {
            return;
        }
        {
            let mut q = self.queue.lock();
            for m in msgs {
                if let Err(e) = q.push(m) {
                    tracing::error!(topic = %self.topic_name, channel = %self.name, error = %e,
                        "failed to requeue message");
                }
            }
        }
        self.available.notify_one();
    }

    /// Wakes one waiting consumer when messages are queued (first come, first served,
    /// like receivers of nsqd's Go channel). A woken consumer that takes only its share,
    /// or cannot take anything, passes the wake-up on with [`pass_baton`](Self::pass_baton).
    /// Enable the `Notified` before looking at the queue so a put in between is not missed.
    pub fn available(&self) -> &Notify {
        &self.available
    }

    /// How many consumers are subscribed.
    pub fn consumer_count(&self) -> usize {
        self.consumer_count.load(Ordering::Relaxed)
    }

    /// Hands a wake-up on to the next waiting consumer.
    pub fn pass_baton(&self) {
        self.available.notify_one();
    }

    /// Hands up to `max` queued messages to `client` and marks them in flight until
    /// `now + timeout`. With `sample_rate` > 0, each message is kept with probability
    /// (sample_rate+1)/100 and the others are dropped, as nsqd does.
    pub fn deliver(
        &self,
        client: &Arc<ClientShared>,
        max: usize,
        timeout: Duration,
        sample_rate: i32,
        out: &mut Vec<Message>,
    ) -> usize {
        if max == 0 || self.is_paused() {
            return 0;
        }
        let start = out.len();
        let more_left;
        {
            let mut q = self.queue.lock();
            // With several consumers, take a fair share so the others get some too.
            let consumers = self.consumer_count.load(Ordering::Relaxed).max(1);
            let share = (q.depth().max(0) as usize).div_ceil(consumers).max(1);
            let max = max.min(share);
            while out.len() - start < max {
                let Some(mut m) = q.pop() else { break };
                if sample_rate > 0 && rand::random_range(0..100) > sample_rate {
                    continue;
                }
                m.attempts = m.attempts.wrapping_add(1);
                out.push(m);
            }
            more_left = q.depth() > 0;
        }
        if more_left {
            self.pass_baton();
        }
        let n = out.len() - start;
        if n == 0 {
            return 0;
        }
        self.counters
            .delivered_count
            .fetch_add(n as u64, Ordering::Relaxed);
        let now = Instant::now();
        {
            let mut f = self.in_flight.lock();
            for m in &out[start..] {
                f.insert(InFlight {
                    msg: m.clone(),
                    client: client.clone(),
                    deadline: now + timeout,
                    delivered_at: now,
                });
            }
        }
        n
    }

    /// FIN: the message is done; its end-to-end latency is recorded.
    pub fn finish(&self, client_id: u64, id: &MessageId) -> Result<Message, InFlightError> {
        let msg = self.in_flight.lock().remove(client_id, id).map(|e| e.msg)?;
        self.counters.finish_count.fetch_add(1, Ordering::Relaxed);
        let latency = crate::message::now_ns()
            .saturating_sub(msg.timestamp)
            .max(0);
        self.latency.observe_ns(latency as u64);
        if let Some(q) = &self.e2e {
            q.lock().insert(Instant::now(), latency as f64);
        }
        Ok(msg)
    }

    /// End-to-end latency percentiles; `None` when the feature is off.
    pub fn e2e_latency(&self) -> Option<crate::quantile::Percentiles> {
        self.e2e.as_ref().map(|q| q.lock().result(Instant::now()))
    }

    /// Adds this channel's latency samples to a topic-wide merge.
    pub fn merge_e2e_samples(&self, into: &mut Vec<f64>, count: &mut u64) {
        if let Some(q) = &self.e2e {
            q.lock().merge_into(Instant::now(), into, count);
        }
    }

    /// REQ: back to the queue now, or after `delay`.
    pub fn requeue(
        &self,
        client_id: u64,
        id: &MessageId,
        delay: Duration,
    ) -> Result<(), InFlightError> {
        let entry = self.in_flight.lock().remove(client_id, id)?;
        self.counters.requeue_count.fetch_add(1, Ordering::Relaxed);
        if delay.is_zero() {
            self.requeue_now(vec![entry.msg]);
        } else {
            self.deferred.lock().push(entry.msg, Instant::now() + delay);
        }
        Ok(())
    }

    /// TOUCH: extend the deadline, bounded by delivery + `max_timeout`.
    pub fn touch(
        &self,
        client_id: u64,
        id: &MessageId,
        timeout: Duration,
        max_timeout: Duration,
    ) -> Result<(), InFlightError> {
        self.in_flight
            .lock()
            .touch(client_id, id, Instant::now(), timeout, max_timeout)
    }

    /// Requeues timed-out in-flight messages and releases due deferred ones. Returns
    /// how many messages moved.
    pub fn process_timers(&self, now: Instant) -> usize {
        let mut expired = Vec::new();
        self.in_flight.lock().pop_expired(now, &mut expired);
        let mut due = Vec::new();
        self.deferred.lock().pop_due(now, &mut due);
        let moved = expired.len() + due.len();
        if !expired.is_empty() {
            self.counters
                .timeout_count
                .fetch_add(expired.len() as u64, Ordering::Relaxed);
        }
        for e in &expired {
            e.client.release_in_flight();
        }
        due.extend(expired.into_iter().map(|e| e.msg));
        self.requeue_now(due);
        moved
    }

    pub fn add_client(&self, client: Arc<ClientShared>, max_consumers: i64) -> Result<(), String> {
        let mut c = self.consumers.lock();
        if max_consumers > 0 && c.len() as i64 >= max_consumers && !c.contains_key(&client.id) {
            return Err(format!(
                "consumers for {}:{} exceeds limit of {}",
                self.topic_name, self.name, max_consumers
            ));
        }
        c.insert(client.id, client);
        self.consumer_count.store(c.len(), Ordering::Relaxed);
        Ok(())
    }

    /// Removes a consumer; returns how many remain.
    pub fn remove_client(&self, client_id: u64) -> usize {
        let mut c = self.consumers.lock();
        c.remove(&client_id);
        self.consumer_count.store(c.len(), Ordering::Relaxed);
        c.len()
    }

    pub fn consumers(&self) -> Vec<Arc<ClientShared>> {
        self.consumers.lock().values().cloned().collect()
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
        if !paused {
            self.available.notify_waiters();
            for c in self.consumers.lock().values() {
                c.wake.notify_one();
            }
        }
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// Marks the channel gone and disconnects its consumers.
    pub fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
        for c in self.consumers.lock().values() {
            c.kill();
        }
    }

    pub fn depth(&self) -> i64 {
        self.queue.lock().depth()
    }

    pub fn backend_depth(&self) -> i64 {
        self.queue.lock().backend_depth()
    }

    pub fn in_flight_count(&self) -> usize {
        self.in_flight.lock().len()
    }

    pub fn deferred_count(&self) -> usize {
        self.deferred.lock().len()
    }

    /// Takes up to `max` queued messages out of the channel without delivering them
    /// (`nsq drain` moving a removed node's queues elsewhere).
    pub fn take_queued(&self, max: usize, out: &mut Vec<Message>) -> usize {
        let mut q = self.queue.lock();
        let start = out.len();
        while out.len() - start < max {
            match q.pop() {
                Some(m) => out.push(m),
                None => break,
            }
        }
        out.len() - start
    }

    /// Drops queued, in-flight and deferred messages; consumers' in-flight counts reset.
    pub fn empty(&self) -> Result<(), QueueError> {
        let dropped = self.in_flight.lock().drain();
        self.deferred.lock().drain();
        for c in self.consumers.lock().values() {
            c.in_flight_count.store(0, Ordering::Release);
            c.wake.notify_one();
        }
        drop(dropped);
        self.queue.lock().clear()
    }

    /// Shutdown: writes queued, in-flight and deferred messages to disk and closes it.
    pub fn persist_and_close(&self, replacement: MessageQueue) -> Result<(), QueueError> {
        let in_flight: Vec<Message> = self
            .in_flight
            .lock()
            .drain()
            .into_iter()
            .map(|e| e.msg)
            .collect();
        let deferred = self.deferred.lock().drain();
        let queue = std::mem::replace(&mut *self.queue.lock(), replacement);
        queue.persist_and_close(in_flight.into_iter().chain(deferred))
    }

    /// Deletion: removes the channel's disk files.
    pub fn delete_storage(&self, replacement: MessageQueue) -> Result<(), QueueError> {
        self.in_flight.lock().drain();
        self.deferred.lock().drain();
        let queue = std::mem::replace(&mut *self.queue.lock(), replacement);
        queue.delete()
    }

    /// Periodic disk sync.
    pub fn sync_if_due(&self) -> Result<(), QueueError> {
        self.queue.lock().sync_if_due()
    }
}
