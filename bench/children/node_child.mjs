// @parcel/watcher (inotify backend) or chokidar, speaking the harness line protocol (see emit.py).
// Node has no realtime clock with sub-ms resolution, so map process.hrtime onto Date.now() at a
// millisecond edge once: the stamps are then CLOCK_REALTIME to within a few microseconds.
import { createInterface } from "node:readline";
import { createRequire } from "node:module";

const mode = process.argv[2];
const require = createRequire(process.env.BENCH_NODE_MODULES + "/");

function calibrate() {
  const start = Date.now();
  let now = start;
  while (now === start) now = Date.now();
  return BigInt(now) * 1000000n - process.hrtime.bigint();
}
const offset = calibrate();
const stamp = () => String(process.hrtime.bigint() + offset);
const write = (fields) => process.stdout.write(fields.join("\t") + "\n");
const event = (ts, action, path) => write(["E", ts, action, path]);
const clean = (s) => String(s).replace(/[\t\n]/g, " ");

async function watchParcel(path) {
  const watcher = require("@parcel/watcher");
  return watcher.subscribe(path, (err, events) => {
    const ts = stamp();
    if (err) {
      const msg = clean(err.message || err);
      write(/overflow/i.test(msg) ? ["O", ts, msg] : ["X", msg]);
    }
    for (const e of events || []) event(ts, e.type, e.path);
  }, { backend: "inotify" });
}

async function watchChokidar(path) {
  const chokidar = await import(require.resolve("chokidar"));
  const w = chokidar.watch(path, { ignoreInitial: true, persistent: true });
  w.on("all", (action, p) => event(stamp(), action, p));
  w.on("error", (err) => write(["X", clean(err.message || err)]));
  await new Promise((resolve) => w.on("ready", resolve));
  return w;
}

const subs = [];
const rl = createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  const cmd = line.split("\t");
  if (cmd[0] === "quit") {
    for (const s of subs) await (s.unsubscribe ? s.unsubscribe() : s.close());
    process.exit(0);
  }
  if (cmd[0] === "watch" || cmd[0] === "create") {
    const t0 = process.hrtime.bigint();
    try {
      subs.push(mode === "parcel" ? await watchParcel(cmd[2]) : await watchChokidar(cmd[2]));
      write(["A", cmd[1], String(process.hrtime.bigint() - t0)]);
    } catch (err) {
      write(["X", clean(err.message || err)]);
    }
  }
});
rl.on("close", () => process.exit(0));
write(["R"]);
