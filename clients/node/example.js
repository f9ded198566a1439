// A fero client in Node.js: the services are loaded from protos/ at run time with
// @grpc/proto-loader, so this works from the .proto files alone, like any language's
// generated client.
//
//   node example.js HOST:PORT COUNTER AMOUNT
//
// Adds AMOUNT to COUNTER (with a ticket, so a retry is never counted twice), reads it
// back, then subscribes to the counter's commits from the start of the log and prints
// the first one. Prints one JSON line per step; exits 1 with the gRPC status on error.
"use strict";

const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTOS = path.join(__dirname, "..", "..", "protos");
const definition = protoLoader.loadSync(
  ["fero/v1/counters.proto", "fero/v1/changelog.proto"],
  // longs as strings and enums as names: exact in JavaScript, whatever the size.
  { includeDirs: [PROTOS], longs: String, enums: String, defaults: true, oneofs: true },
);
const fero = grpc.loadPackageDefinition(definition).fero.v1;

function call(client, method, request) {
  return new Promise((resolve, reject) =>
    client[method](request, { deadline: Date.now() + 10000 }, (err, reply) => (err ? reject(err) : resolve(reply))),
  );
}

function number(n) {
  // fero.v1.Number: i64 (as a string here) or exact text.
  return n.repr === "i64" ? n.i64 : n.text;
}

async function main() {
  const [address = "127.0.0.1:4000", name = "node-demo", amount = "5"] = process.argv.slice(2);
  const credentials = grpc.credentials.createInsecure();
  const counters = new fero.Counters(address, credentials);
  const changelog = new fero.Changelog(address, credentials);

  const ticket = `node-${process.pid}-${Date.now()}`;
  const added = await call(counters, "Add", { name, amount: { text: amount }, ticket, acks: "ACKS_LEADER" });
  console.log(JSON.stringify({ step: "add", value: number(added.value), coherent: added.coherent }));

  const again = await call(counters, "Add", { name, amount: { text: amount }, ticket, acks: "ACKS_LEADER" });
  console.log(JSON.stringify({ step: "retry", value: number(again.value), duplicate: again.duplicate }));

  const got = await call(counters, "Get", { name });
  console.log(JSON.stringify({ step: "get", value: number(got.value), kind: got.kind }));

  await new Promise((resolve, reject) => {
    // proto-loader turns field names into camelCase (default_from -> defaultFrom).
    const stream = changelog.Subscribe({ prefix: name, defaultFrom: "START_EARLIEST" });
    stream.on("data", (event) => {
      for (const c of event.commits) {
        console.log(JSON.stringify({
          step: "subscribe", partition: c.partition, offset: c.offset, key: c.record.key,
          op: c.record.op, amount: number(c.record.amount), ticket: c.record.ticket,
        }));
        stream.cancel();
        resolve();
        return;
      }
    });
    stream.on("error", (err) => (err.code === grpc.status.CANCELLED ? resolve() : reject(err)));
  });
  counters.close();
  changelog.close();
}

main().catch((err) => {
  console.error(`fero example: ${err.code !== undefined ? grpc.status[err.code] : ""} ${err.details || err.message}`);
  process.exit(1);
});
