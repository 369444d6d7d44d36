// Writes Kafka messages whose values are serialized by the real
// @kafkajs/confluent-schema-registry client: it registers an Avro, a
// Protobuf and a JSON Schema schema (the Avro and Protobuf ones with a
// reference each) with a Confluent-compatible registry, encodes each
// message with the one its "format" names, and produces them in order to
// partition 0 of a topic with kafkajs. The kafka source's Schema Registry
// tests (collectors/kafka/schemaregistry_integration_test.go) run it.
//
//   SR_MODULES=.services/node/schemaregistry node produce.js < plan.json
//
// plan.json: {"registry": {"host", "username"?, "password"?},
//             "brokers": ["127.0.0.1:19092"], "topic": "t",
//             "messages": [{"format": "avro" | "protobuf" | "json" | "plain" | "wire",
//                           "key"?: "k", "value": {...}, "id"?: 999}]}
// "plain" writes the value as JSON text, not in the wire format; "wire"
// writes it as JSON after a wire-format header with schema id "id" (one
// the registry does not have, for the tests of unknown ids).
//
// It prints {"ids": {"avro": N, "protobuf": N, "json": N}} on stdout.
//
// The client writes Protobuf values without the message-index list that
// Confluent's wire format puts between the schema id and the payload (it
// strips leading zero bytes when it reads). This script inserts the list
// of the first message, a single zero byte, as Confluent's serializers
// write it, so the values are what a Java, Go or Python producer writes.
'use strict';
const path = require('path');
const { createRequire } = require('module');

const modules = process.env.SR_MODULES;
if (!modules) {
  console.error('SR_MODULES must name the directory @kafkajs/confluent-schema-registry is installed in');
  process.exit(2);
}
const req = createRequire(path.join(path.resolve(modules), 'package.json'));
const { SchemaRegistry, SchemaType } = req('@kafkajs/confluent-schema-registry');
const { Kafka, logLevel } = req('kafkajs');

const customerAvro = {
  type: 'record', name: 'Customer', namespace: 'shop',
  fields: [{ name: 'id', type: 'string' }, { name: 'email', type: ['null', 'string'], default: null }],
};
const paymentAvro = {
  type: 'record', name: 'Payment', namespace: 'shop',
  fields: [
    { name: 'payment_id', type: 'string' },
    { name: 'job_id', type: 'string' },
    { name: 'attempt', type: 'int' },
    { name: 'amount_cents', type: 'long' },
    { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'customer', type: 'shop.Customer' },
  ],
};
const moneyProto = `syntax = "proto3";
package shop;
message Money {
  string currency = 1;
  int64 cents = 2;
}
`;
const paymentProto = `syntax = "proto3";
package shop;
import "shop/money.proto";
message PaymentEvent {
  string payment_id = 1;
  string job_id = 2;
  int32 attempt = 3;
  Money amount = 4;
  string at = 5;
}
`;
const paymentJSONSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  properties: {
    payment_id: { type: 'string' }, job_id: { type: 'string' },
    attempt: { type: 'integer' }, amount_cents: { type: 'integer' }, at: { type: 'string' },
  },
  required: ['payment_id', 'at'],
};

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function main() {
  const plan = await readStdin();
  const auth = plan.registry.username ? { username: plan.registry.username, password: plan.registry.password } : undefined;
  const registry = new SchemaRegistry({ host: plan.registry.host, auth, retry: { retries: 2 } });
  const t = plan.topic;
  const opts = (subject) => ({ subject, updateConfig: false });

  const customer = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(customerAvro) }, opts('shop.Customer'));
  const avro = await registry.register({
    type: SchemaType.AVRO, schema: JSON.stringify(paymentAvro),
    references: [{ name: 'shop.Customer', subject: 'shop.Customer', version: 1 }],
  }, opts(`${t}-avro-value`));
  await registry.register({ type: SchemaType.PROTOBUF, schema: moneyProto }, opts('shop/money.proto'));
  const protobuf = await registry.register({
    type: SchemaType.PROTOBUF, schema: paymentProto,
    references: [{ name: 'shop/money.proto', subject: 'shop/money.proto', version: 1 }],
  }, opts(`${t}-protobuf-value`));
  const json = await registry.register({ type: SchemaType.JSON, schema: JSON.stringify(paymentJSONSchema) }, opts(`${t}-json-value`));
  void customer;

  const messages = [];
  for (const m of plan.messages) {
    let value;
    switch (m.format) {
      case 'avro':
        value = await registry.encode(avro.id, m.value);
        break;
      case 'protobuf': {
        const enc = await registry.encode(protobuf.id, m.value);
        // The message-index list [0] (see the header).
        value = Buffer.concat([enc.subarray(0, 5), Buffer.from([0]), enc.subarray(5)]);
        break;
      }
      case 'json':
        value = await registry.encode(json.id, m.value);
        break;
      case 'plain':
        value = Buffer.from(JSON.stringify(m.value));
        break;
      case 'wire': {
        const head = Buffer.alloc(5);
        head.writeInt32BE(m.id, 1);
        value = Buffer.concat([head, Buffer.from(JSON.stringify(m.value))]);
        break;
      }
      default:
        throw new Error(`unknown format ${m.format}`);
    }
    messages.push({ key: m.key || null, value, partition: 0 });
  }

  const kafka = new Kafka({ clientId: 'twice-schemaregistry-test', brokers: plan.brokers, logLevel: logLevel.ERROR });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    await producer.send({ topic: t, acks: -1, messages });
  } finally {
    await producer.disconnect();
  }
  process.stdout.write(JSON.stringify({ ids: { avro: avro.id, protobuf: protobuf.id, json: json.id } }) + '\n');
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
