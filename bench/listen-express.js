// The reference receiver many teams start from (bench/listen.sh measures it next to hookctl
// listen): express, verifies X-Signature (hex HMAC-SHA256 of "{timestamp}.{raw body}") with
// a constant-time compare and a 5 minute window, pushes the event to an in-memory array.
// Usage: node bench/listen-express.js PORT   (express from bench/.scratch/node_modules)
const path = require("path");
const crypto = require("crypto");
const express = require(path.join(__dirname, ".scratch", "node_modules", "express"));

const secret = process.env.BENCH_SECRET || "bench-secret-value";
const port = Number(process.argv[2] || 3000);
const events = [];
const app = express();

app.post("/webhooks/email", express.raw({ type: "*/*", limit: "25mb" }), (req, res) => {
  const ts = req.get("X-Signature-Timestamp") || "";
  const sig = req.get("X-Signature") || "";
  const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  if (Math.abs(Date.now() / 1000 - Number(ts)) > 300) {
    return res.status(400).send("stale timestamp\n");
  }
  const mac = crypto.createHmac("sha256", secret).update(ts + ".").update(body).digest();
  const given = Buffer.from(sig, "hex");
  if (given.length !== mac.length || !crypto.timingSafeEqual(given, mac)) {
    return res.status(401).send("bad signature\n");
  }
  const event = JSON.parse(body.toString("utf8"));
  events.push(event);
  res.status(202).json({ status: "accepted", event_id: event.event_id });
});
app.get("/count", (req, res) => res.json({ events: events.length }));

app.listen(port, "127.0.0.1", () => console.error(`express listening on ${port}`));
