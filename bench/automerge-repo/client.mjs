// The client side of muster-bench's automerge-repo comparison: one
// measurement per run, against a sync server started by server.mjs.
//
//   node client.mjs COMMAND --url ws://127.0.0.1:PORT --layout per-contact|one-doc
//        [--n N] [--store DIR] [--state FILE] [--seed S] [--samples K]
//        [--devices D] [--per-device P] [--timeout SECONDS]
//
// Prints ONE JSON line with its results (and the process's peak memory,
// `max_rss_mb`) on stdout; progress goes to stderr.
//
// Layouts, as an automerge-repo application would lay out an address book:
//   per-contact: one document per contact, plus one index document
//                `{ contacts: [url, ...] }` so a fresh device knows what to fetch;
//   one-doc:     one document `{ contacts: { key: contact, ... } }`.
//
// "The server has it" is read from the server's own sync messages: the
// server is a storage peer, so each client repo records, per document, the
// heads the server last told it it holds (`handle.getSyncInfo(storageId)`).
// A document is on the server once those heads equal the local heads. The
// server writes to its disk at most 100 ms (its save debounce) later.
//
// Commands:
//   fill        an office creates N contacts and waits until the server holds them
//   first-sync  a fresh device (empty --store) loads everything
//   edit        the office (its --store from fill) edits 100 contacts
//   catch-up    the device of first-sync (same --store) reconnects and waits
//               until the 100 edits are visible
//   propagation device A changes a field, device B waits for it; K samples
//   ingest      D devices each create (per-contact) or add (one-doc) P contacts
//               offline, then connect at once; time until the server holds
//               them all (one-doc: until an observer device has them all)
//   idle        D raw WebSockets do automerge-repo's handshake and stay open
//               until stdin closes
import fs from "node:fs"
import path from "node:path"
import { Repo, cbor } from "@automerge/automerge-repo"
import * as Automerge from "@automerge/automerge"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import WebSocket from "ws"

// ---------------------------------------------------------------- arguments

const [command, ...rest] = process.argv.slice(2)
const args = {}
for (let i = 0; i < rest.length; i += 2) {
  if (!rest[i].startsWith("--")) throw new Error(`unexpected argument ${rest[i]}`)
  args[rest[i].slice(2)] = rest[i + 1]
}
const url = args.url
const layout = args.layout ?? "per-contact"
const n = Number(args.n ?? 10000)
const seed = Number(args.seed ?? 42)
const timeoutSecs = Number(args.timeout ?? 170)
const log = (...m) => console.error(`[${command} ${layout}]`, ...m)

if (!["per-contact", "one-doc"].includes(layout)) throw new Error(`layout ${layout}?`)

// A run never outlives its budget: the Rust side also kills it.
setTimeout(() => {
  console.error(`timeout after ${timeoutSecs} s`)
  process.exit(3)
}, timeoutSecs * 1000).unref()

// ------------------------------------------------------------------- people

// A small, seeded PRNG (mulberry32) so every run creates the same people.
function rng(s) {
  let a = s >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const GIVEN = (
  "Olivia Amelia Isla Ava Mia Ivy Lily Isabella Rosie Sophia Grace Freya Aisha " +
  "Fatima Zainab Maryam Priya Ananya Chloe Emily Sofia Lucía María Carmen Nuala " +
  "Siobhan Aoife Oliver George Noah Arthur Muhammad Leo Harry Oscar Archie Henry " +
  "Theodore Jack Ibrahim Omar Yusuf Arjun Rohan Kwame Kofi Chidi Tomasz Piotr " +
  "Mateusz Liam Seán Dmitri Andrei Jakub Wei Jun Hiroshi Mei Thanh Linh Nkechi"
).split(" ")
const FAMILY = (
  "Smith Jones Taylor Brown Williams Wilson Johnson Davies Patel Robinson Wright " +
  "Thompson Evans Walker White Roberts Green Hall Wood Jackson Clarke Khan Ahmed " +
  "Ali Hussain Begum Singh Kaur Sharma Okafor Mensah Nowak Kowalski Wiśniewski " +
  "García López Martínez Rodríguez O'Brien Murphy Kelly MacDonald Campbell " +
  "Stewart Nguyen Tran Chen Wang Li Zhang Kim Park Sato Suzuki Rossi Russo " +
  "Ferrari Müller Schmidt Dubois Moreau Silva Santos Costa Okonkwo Adeyemi"
).split(" ")
const DOMAINS = ["gmail.com", "outlook.com", "yahoo.co.uk", "hotmail.co.uk", "icloud.com", "btinternet.com", "example.org"]
const TAGS = ["volunteer", "donor", "driver", "kitchen", "warehouse", "first-aid", "trustee", "welsh-speaker", "weekend", "evenings", "dbs-checked", "newsletter"]
const ROLES = ["coordinator", "shift lead", "driver", "cook", "packer", "greeter"]

function fold(s) {
  return s.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase().replace(/[^a-z0-9]/g, "")
}

function people(s) {
  const r = rng(s)
  const pick = (list) => list[Math.floor(r() * list.length)]
  return (i) => {
    const given = pick(GIVEN)
    let family = pick(FAMILY)
    if (r() < 0.08) family = `${family} ${pick(FAMILY)}`
    const tail = String(Math.floor(r() * 1e6)).padStart(6, "0")
    const phones = r() < 0.9 ? [`+44 7700 ${tail}`] : []
    const g = fold(given)
    const f = fold(family)
    const local = [`${g}.${f}`, `${g}${f}${i % 100}`, `${g[0]}${f}`, `${g}.${f}${i % 1000}`][Math.floor(r() * 4)]
    const emails = r() < 0.8 ? [`${local}@${pick(DOMAINS)}`] : []
    const tags = []
    for (let k = Math.floor(r() * 4); k > 0; k--) {
      const t = pick(TAGS)
      if (!tags.includes(t)) tags.push(t)
    }
    const roles = r() < 0.5 ? [pick(ROLES)] : []
    return { name: `${given} ${family}`, phones, emails, tags, roles }
  }
}

// ------------------------------------------------------------------ helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function makeRepo(store) {
  return new Repo({
    network: [new WebSocketClientAdapter(url)],
    storage: store ? new NodeFSStorageAdapter(store) : undefined,
  })
}

async function connected(repo) {
  while (repo.peers.length === 0) await sleep(2)
  return repo.peers[0]
}

// The storage id the server advertised in its handshake.
async function serverStorageId(repo) {
  const peer = await connected(repo)
  for (;;) {
    const id = repo.getStorageIdOfPeer(peer)
    if (id) return id
    await sleep(2)
  }
}

const sameHeads = (a, b) => !!a && !!b && a.length === b.length && [...a].sort().join() === [...b].sort().join()

// Resolves once the server holds every handle's current heads. Waits on
// each handle's "remote-heads" event rather than polling: encoding the heads
// of thousands of handles on every poll would bill the driver's own work to
// the library.
async function serverHolds(repo, handles) {
  const sid = await serverStorageId(repo)
  const held = (h) => sameHeads(h.getSyncInfo(sid)?.lastHeads, h.heads())
  let missing = 0
  const waits = handles.map((h) => {
    if (held(h)) return null
    missing++
    return new Promise((resolve) => {
      const on = ({ storageId }) => {
        if (storageId === sid && held(h)) {
          h.off("remote-heads", on)
          missing--
          resolve()
        }
      }
      h.on("remote-heads", on)
    })
  })
  const progress = setInterval(() => log(`server still lacks ${missing} of ${handles.length} documents`), 5000)
  await Promise.all(waits)
  clearInterval(progress)
}

// `repo.find` over many URLs, at most `width` at once. Under load the
// server answers some requests "unavailable" (its own 60 s wait for a
// document to load from its disk runs out); those handles are returned in
// that state, for the caller to count, rather than ending the run.
async function findAll(repo, urls, width = 64) {
  const out = new Array(urls.length)
  let next = 0
  const worker = async () => {
    while (next < urls.length) {
      const i = next++
      out[i] = await repo.find(urls[i], { allowableStates: ["ready", "unavailable"] })
    }
  }
  await Promise.all(Array.from({ length: Math.min(width, urls.length) }, worker))
  return out
}

const unavailable = (handles) => handles.filter((h) => h.state === "unavailable").length

const readState = () => JSON.parse(fs.readFileSync(args.state, "utf8"))
const writeState = (s) => fs.writeFileSync(args.state, JSON.stringify(s))

function done(result) {
  // This process's peak resident memory, for the device figures: VmHWM,
  // not getrusage's maxRSS, which Linux carries over from the parent
  // across exec (the bench's own peak).
  const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"))
  result.max_rss_mb = hwm ? Number(hwm[1]) / 1024 : null
  process.stdout.write(JSON.stringify(result) + "\n")
  process.exit(0)
}

function percentile(sorted, p) {
  return sorted[Math.round((sorted.length - 1) * p)]
}

// ----------------------------------------------------------------- commands

async function fill() {
  const repo = makeRepo(args.store)
  await connected(repo)
  const person = people(seed)
  const t = performance.now()
  let state
  let handles
  if (layout === "per-contact") {
    handles = []
    for (let i = 0; i < n; i++) {
      handles.push(repo.create(person(i)))
      // Let the network send while the office keeps creating.
      if (i % 100 === 99) await sleep(0)
    }
    const index = repo.create({ contacts: handles.map((h) => h.url) })
    handles.push(index)
    state = { layout, index: index.url }
  } else {
    const contacts = {}
    for (let i = 0; i < n; i++) contacts[`c${i}`] = person(i)
    const doc = repo.create({ contacts })
    handles = [doc]
    state = { layout, doc: doc.url }
  }
  await serverHolds(repo, handles)
  const secs = (performance.now() - t) / 1000
  await repo.flush()
  await sleep(300) // the server's save debounce is 100 ms
  writeState(state)
  done({ secs, docs: handles.length })
}

async function firstSync() {
  const state = readState()
  const t = performance.now()
  const repo = makeRepo(args.store)
  let count
  let missing = 0
  if (layout === "per-contact") {
    const index = await repo.find(state.index)
    const handles = await findAll(repo, index.doc().contacts)
    missing = unavailable(handles)
    count = handles.length - missing
  } else {
    const doc = await repo.find(state.doc)
    count = Object.keys(doc.doc().contacts).length
  }
  const loaded = (performance.now() - t) / 1000
  await repo.flush()
  const secs = (performance.now() - t) / 1000
  done({ secs, loaded_secs: loaded, contacts: count, unavailable: missing })
}

async function edit() {
  const state = readState()
  const repo = makeRepo(args.store)
  const mark = `edit-${Date.now()}`
  const edits = Number(args.edits ?? 100)
  let handles
  if (layout === "per-contact") {
    const index = await repo.find(state.index)
    const urls = index.doc().contacts.slice(0, edits)
    handles = await findAll(repo, urls)
    for (const h of handles) h.change((d) => { d.bench = mark })
    state.edited = urls
  } else {
    const doc = await repo.find(state.doc)
    const keys = Object.keys(doc.doc().contacts).slice(0, edits)
    for (const k of keys) doc.change((d) => { d.contacts[k].bench = mark })
    handles = [doc]
    state.edited = keys
  }
  state.mark = mark
  await serverHolds(repo, handles)
  await repo.flush()
  await sleep(300)
  writeState(state)
  done({ edits })
}

async function catchUp() {
  const state = readState()
  const t = performance.now()
  const repo = makeRepo(args.store)
  if (layout === "per-contact") {
    // The device does not know which contacts changed: it asks for every
    // document it holds, as a reconnecting automerge-repo app does.
    const index = await repo.find(state.index)
    const handles = await findAll(repo, index.doc().contacts)
    const edited = new Set(state.edited)
    const watch = handles.filter((h) => edited.has(h.url))
    if (unavailable(watch) > 0) {
      console.error(`${unavailable(watch)} edited documents unavailable`)
      process.exit(1)
    }
    while (!watch.every((h) => h.doc().bench === state.mark)) await sleep(1)
  } else {
    const doc = await repo.find(state.doc)
    const seen = () => state.edited.every((k) => doc.doc().contacts?.[k]?.bench === state.mark)
    while (!seen()) await sleep(1)
  }
  const secs = (performance.now() - t) / 1000
  done({ secs })
}

async function propagation() {
  const samples = Number(args.samples ?? 200)
  const a = makeRepo()
  const b = makeRepo()
  await Promise.all([connected(a), connected(b)])
  let ha
  let hb
  let set
  let get
  if (layout === "per-contact") {
    ha = a.create({ name: "Latency", n: -1 })
    await serverHolds(a, [ha])
    hb = await b.find(ha.url)
    set = (d, i) => { d.n = i }
    get = (d) => d.n
  } else {
    // The organisation's one document, as filled.
    const state = readState()
    ;[ha, hb] = await Promise.all([a.find(state.doc), b.find(state.doc)])
    set = (d, i) => { d.contacts.c0.n = i }
    get = (d) => d.contacts.c0.n
  }
  await sleep(300)
  const lat = []
  for (let i = 0; i < samples; i++) {
    const seen = new Promise((resolve) => {
      const on = ({ doc }) => {
        if (get(doc) === i) {
          hb.off("change", on)
          resolve(performance.now())
        }
      }
      hb.on("change", on)
    })
    const start = performance.now()
    ha.change((d) => set(d, i))
    lat.push((await seen) - start)
  }
  lat.sort((x, y) => x - y)
  done({ p50_ms: percentile(lat, 0.5), p99_ms: percentile(lat, 0.99), samples })
}

async function ingest() {
  const devices = Number(args.devices ?? 100)
  const perDevice = Number(args["per-device"] ?? 100)
  const total = devices * perDevice
  const person = people(seed + 1)
  // As Muster's devices: each one has made its changes offline and all of
  // them then connect at once; the clock stops when the server holds every
  // device's changes (per-contact: its sync messages say so; one-doc: an
  // observer has them all). Devices have no storage of
  // their own and share this one process, so their own encoding is on the
  // clock too, as the devices' frame building is not on Muster's.
  let org
  let observer
  if (layout === "one-doc") {
    const office = makeRepo()
    org = office.create({ contacts: {} })
    await serverHolds(office, [org])
    // A device that makes none of the changes stops the clock when it has
    // them all: the server's heads merge every device's, so no one device's
    // heads ever equal them.
    observer = await makeRepo().find(org.url)
  }
  const repos = Array.from({ length: devices }, () => new Repo({ network: [] }))
  const handles = []
  for (let d = 0; d < devices; d++) {
    if (layout === "per-contact") {
      for (let i = 0; i < perDevice; i++) handles.push([d, repos[d].create(person(d * perDevice + i))])
    } else {
      // Each device holds the organisation's document from an earlier sync.
      const h = repos[d].import(Automerge.save(org.doc()), { docId: org.documentId })
      for (let i = 0; i < perDevice; i++) {
        h.change((doc) => { doc.contacts[`d${d}-${i}`] = person(d * perDevice + i) })
      }
      handles.push([d, h])
    }
  }
  log("devices ready")
  const t = performance.now()
  for (const r of repos) r.networkSubsystem.addNetworkAdapter(new WebSocketClientAdapter(url))
  if (layout === "per-contact") {
    await Promise.all(repos.map((r, d) => serverHolds(r, handles.filter(([k]) => k === d).map(([, h]) => h))))
  } else {
    while (Object.keys(observer.doc().contacts).length < total) await sleep(10)
  }
  const secs = (performance.now() - t) / 1000
  done({ secs, changes: total, per_sec: total / secs })
}

async function idle() {
  const count = Number(args.devices ?? 1000)
  const sockets = []
  const t = performance.now()
  const open = (i) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url)
      ws.binaryType = "arraybuffer"
      const peerId = `idle-${process.pid}-${i}`
      ws.on("open", () => {
        ws.send(
          cbor.encode({
            type: "join",
            senderId: peerId,
            peerMetadata: { isEphemeral: true },
            supportedProtocolVersions: ["1"],
          }),
        )
      })
      ws.on("message", (data) => {
        const msg = cbor.decode(new Uint8Array(data))
        if (msg.type === "peer") resolve(ws)
        else if (msg.type === "error") reject(new Error(msg.message))
      })
      ws.on("error", reject)
    })
  for (let i = 0; i < count; i += 50) {
    const batch = []
    for (let k = i; k < Math.min(count, i + 50); k++) batch.push(open(k))
    sockets.push(...(await Promise.all(batch)))
  }
  const secs = (performance.now() - t) / 1000
  process.stdout.write(JSON.stringify({ connected: sockets.length, secs }) + "\n")
  // Stay connected until the bench closes our stdin.
  process.stdin.resume()
  process.stdin.on("end", () => process.exit(0))
  process.stdin.on("close", () => process.exit(0))
}

const commands = {
  fill,
  "first-sync": firstSync,
  edit,
  "catch-up": catchUp,
  propagation,
  ingest,
  idle,
}
if (!commands[command]) {
  console.error(`unknown command ${command}; one of ${Object.keys(commands).join(", ")}`)
  process.exit(2)
}
// The library can reject a promise nobody awaits under load (a document
// not ready in 60 s); the driver goes on and its own checks decide.
process.on("unhandledRejection", (e) => log("unhandled rejection:", e?.message ?? e))
if (args.store) fs.mkdirSync(path.resolve(args.store), { recursive: true })
commands[command]().catch((e) => {
  console.error(e)
  process.exit(1)
})
