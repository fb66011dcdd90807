// automerge-repo's WebSocket sync server, set up as the library's own
// sync-server example does: a Repo with a WebSocketServerAdapter (exported
// also as NodeWSServerAdapter) on a `ws` WebSocketServer and a
// NodeFSStorageAdapter on a directory.
//
//   node server.mjs DATA_DIR
//
// Listens on 127.0.0.1 on a port the system picks and prints
// `listening PORT` once ready.
import { Repo } from "@automerge/automerge-repo"
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import { WebSocketServer } from "ws"

const dir = process.argv[2]
if (!dir) {
  console.error("usage: node server.mjs DATA_DIR")
  process.exit(2)
}

// Under load the library rejects promises nobody awaits (a document not
// ready within its 60 s timeout); Node's default would end the server
// there. A sync server in production logs and goes on, so this one does.
process.on("unhandledRejection", (e) => console.error("unhandled rejection:", e?.message ?? e))

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
await new Promise((resolve, reject) => {
  wss.once("listening", resolve)
  wss.once("error", reject)
})

// As a sync server: every peer may read and write every document
// (`access`), and the server does not push documents to peers that did not
// ask for them (`announce`), which is what the library's sync server does
// with `sharePolicy: () => false`.
const repo = new Repo({
  network: [new NodeWSServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(dir),
  peerId: `bench-sync-server-${process.pid}`,
  shareConfig: {
    announce: async () => false,
    access: async () => true,
  },
})

process.stdout.write(`listening ${wss.address().port}\n`)
// The bench reads only that line: the library's own console.log output
// (it logs documents that time out) goes to stderr, the server's log file,
// or writing to the closed pipe would end the server.
console.log = console.error

const stop = async () => {
  await repo.shutdown().catch(() => {})
  process.exit(0)
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
