// Starts our nsqd binary (NSQD_BIN, default <repo>/target/debug/nsqd) on free
// loopback ports with a fresh data directory, and stops it with SIGTERM.
'use strict'

const {spawn} = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..')
const NSQD_BIN = process.env.NSQD_BIN || path.join(REPO_ROOT, 'target', 'debug', 'nsqd')

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const {port} = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

function canConnect(host, port) {
  return new Promise((resolve) => {
    const sock = net.connect({host, port})
    sock.once('connect', () => {
      sock.destroy()
      resolve(true)
    })
    sock.once('error', () => resolve(false))
  })
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

class Nsqd {
  constructor(extraArgs = []) {
    this.host = '127.0.0.1'
    this.extraArgs = extraArgs
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsqd-js-'))
    this.log = []
  }

  async start() {
    if (!fs.existsSync(NSQD_BIN)) {
      throw new Error(`nsqd binary ${NSQD_BIN} not found: build it or set NSQD_BIN`)
    }
    // A probed port can be taken before nsqd binds it: retry a few times.
    for (let attempt = 0; attempt < 5; attempt++) {
      this.port = await freePort()
      const httpPort = await freePort()
      this.exit = null
      this.proc = spawn(
        NSQD_BIN,
        [
          '--tcp-address', `${this.host}:${this.port}`,
          '--http-address', `${this.host}:${httpPort}`,
          '--data-path', this.dir,
          ...this.extraArgs,
        ],
        {stdio: ['ignore', 'pipe', 'pipe']}
      )
      this.proc.stdout.on('data', (d) => this.log.push(d))
      this.proc.stderr.on('data', (d) => this.log.push(d))
      this.exited = new Promise((resolve) => {
        this.proc.once('exit', (code, signal) => {
          this.exit = {code, signal}
          resolve(this.exit)
        })
      })
      const deadline = Date.now() + 10000
      while (Date.now() < deadline && this.exit === null) {
        if (await canConnect(this.host, this.port)) return this
        await sleep(50)
      }
      if (this.exit === null) this.proc.kill('SIGKILL')
      await this.exited
    }
    throw new Error(`nsqd did not start:\n${this.logText()}`)
  }

  get tcpAddress() {
    return `${this.host}:${this.port}`
  }

  logText() {
    return Buffer.concat(this.log).toString()
  }

  // SIGTERM and wait; resolves to {code, signal}. Kills after 15 s.
  async stop() {
    if (this.exit === null) {
      this.proc.kill('SIGTERM')
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 15000)
      await this.exited
      clearTimeout(timer)
    }
    fs.rmSync(this.dir, {recursive: true, force: true})
    return this.exit
  }
}

// Run fn(nsqd) against a fresh nsqd; afterwards require a clean SIGTERM exit (code 0).
async function withNsqd(fn, extraArgs = []) {
  const nsqd = await new Nsqd(extraArgs).start()
  let failure = null
  try {
    await fn(nsqd)
  } catch (err) {
    failure = err
  }
  const exit = await nsqd.stop()
  if (failure) throw failure
  if (exit.code !== 0) {
    throw new Error(
      `nsqd did not exit cleanly on SIGTERM: ${JSON.stringify(exit)}\n${nsqd.logText()}`
    )
  }
}

module.exports = {withNsqd, sleep, NSQD_BIN}
