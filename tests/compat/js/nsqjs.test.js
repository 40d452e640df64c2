// nsqjs 0.13 Writer/Reader against our nsqd: plain, snappy and deflate
// connections, requeue with delay, deferred publish.
'use strict'

const {test} = require('node:test')
const assert = require('node:assert/strict')
const zlib = require('node:zlib')
const nsq = require('nsqjs')
const {withNsqd, sleep} = require('./nsqd')

const N = 5000

function connectWriter(nsqd, options = {}) {
  return new Promise((resolve, reject) => {
    const w = new nsq.Writer(nsqd.host, nsqd.port, options)
    w.errors = []
    w.once(nsq.Writer.READY, () => resolve(w))
    w.on(nsq.Writer.ERROR, (err) => {
      w.errors.push(err)
      reject(err)
    })
    w.connect()
  })
}

function publish(writer, topic, msgs) {
  return new Promise((resolve, reject) => {
    writer.publish(topic, msgs, (err) => (err ? reject(err) : resolve()))
  })
}

function deferPublish(writer, topic, msg, ms) {
  return new Promise((resolve, reject) => {
    writer.deferPublish(topic, [msg], ms, (err) => (err ? reject(err) : resolve()))
  })
}

// Resolves once the reader's SUB has been acknowledged.
function startReader(nsqd, topic, channel, options, onMessage) {
  return new Promise((resolve, reject) => {
    const r = new nsq.Reader(topic, channel, {nsqdTCPAddresses: [nsqd.tcpAddress], ...options})
    r.errors = []
    r.on(nsq.Reader.MESSAGE, (msg) => onMessage(msg, r))
    r.on(nsq.Reader.ERROR, (err) => {
      r.errors.push(err)
      reject(err)
    })
    r.once(nsq.Reader.READY, () => resolve(r))
    r.connect()
  })
}

async function waitFor(pred, ms, what) {
  const deadline = Date.now() + ms
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(10)
  }
}

// Which compression a live nsqjs connection negotiated, judged by its streams.
function compressionOf(conn) {
  if (!conn.inflater) return 'none'
  if (conn.inflater instanceof zlib.InflateRaw) return 'deflate'
  if (conn.inflater.constructor.name === 'UnsnappyStream') return 'snappy'
  return `unknown (${conn.inflater.constructor.name})`
}

for (const mode of ['none', 'snappy', 'deflate']) {
  test(`publish and consume ${N} messages, compression: ${mode}`, {timeout: 60000}, () =>
    withNsqd(async (nsqd) => {
      const options = {snappy: mode === 'snappy', deflate: mode === 'deflate'}
      const topic = `js_${mode}`
      const got = []
      const reader = await startReader(nsqd, topic, 'ch', {...options, maxInFlight: 200}, (m) => {
        got.push(m.body.toString())
        m.finish()
      })
      const writer = await connectWriter(nsqd, options)
      try {
        assert.equal(compressionOf(writer.conn), mode, 'writer compression')
        const readerConns = reader.readerRdy.connections.map((c) => c.conn)
        assert.equal(readerConns.length, 1)
        assert.equal(compressionOf(readerConns[0]), mode, 'reader compression')

        const msgs = Array.from({length: N}, (_, i) => `${mode}-${i}`)
        // Half as single PUBs (pipelined), half as MPUBs of 100.
        const half = N / 2
        const pubs = msgs.slice(0, half).map((m) => publish(writer, topic, m))
        for (let i = half; i < N; i += 100) pubs.push(publish(writer, topic, msgs.slice(i, i + 100)))
        await Promise.all(pubs)

        await waitFor(() => got.length >= N, 30000, `${N} messages (have ${got.length})`)
        await sleep(300) // a duplicate would arrive by now
        assert.equal(got.length, N, `received ${got.length}, ${new Set(got).size} distinct`)
        assert.deepEqual([...got].sort(), [...msgs].sort())
        assert.deepEqual(reader.errors, [])
        assert.deepEqual(writer.errors, [])
      } finally {
        reader.close()
        writer.close()
      }
    }))
}

test('requeue with delay is redelivered after the delay with attempts 2', {timeout: 20000}, () =>
  withNsqd(async (nsqd) => {
    const delayMs = 1000
    const seen = []
    let requeuedAt = 0
    const reader = await startReader(nsqd, 'js_requeue', 'ch', {}, (m) => {
      seen.push({attempts: m.attempts, id: m.id, body: m.body.toString(), at: Date.now()})
      if (m.attempts === 1) {
        requeuedAt = Date.now()
        m.requeue(delayMs, false)
      } else {
        m.finish()
      }
    })
    const writer = await connectWriter(nsqd)
    try {
      await publish(writer, 'js_requeue', 'again')
      await waitFor(() => seen.length >= 2, delayMs + 5000, 'the redelivery')
      await sleep(300)
      assert.equal(seen.length, 2, JSON.stringify(seen))
      assert.deepEqual(seen.map((s) => s.attempts), [1, 2])
      assert.equal(seen[0].id, seen[1].id)
      assert.equal(seen[1].body, 'again')
      const waited = seen[1].at - requeuedAt
      assert.ok(waited >= delayMs, `redelivered after ${waited} ms < ${delayMs} ms`)
      assert.ok(waited < delayMs + 2000, `redelivered late: ${waited} ms`)
      assert.deepEqual(reader.errors, [])
    } finally {
      reader.close()
      writer.close()
    }
  }))

test('deferred publish is not delivered before its delay', {timeout: 20000}, () =>
  withNsqd(async (nsqd) => {
    const delayMs = 1000
    const seen = new Map()
    const reader = await startReader(nsqd, 'js_dpub', 'ch', {maxInFlight: 10}, (m) => {
      seen.set(m.body.toString(), {attempts: m.attempts, at: Date.now()})
      m.finish()
    })
    const writer = await connectWriter(nsqd)
    try {
      const sentAt = Date.now()
      await deferPublish(writer, 'js_dpub', 'later', delayMs)
      await publish(writer, 'js_dpub', 'now')
      await waitFor(() => seen.size >= 2, delayMs + 5000, 'both messages')
      const later = seen.get('later')
      assert.equal(later.attempts, 1)
      assert.ok(later.at - sentAt >= delayMs, `delivered after ${later.at - sentAt} ms`)
      assert.ok(seen.get('now').at <= later.at, 'the plain PUB should overtake the deferred one')
      assert.deepEqual(reader.errors, [])
    } finally {
      reader.close()
      writer.close()
    }
  }))
