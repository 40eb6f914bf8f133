// One worker process of the peer: takes the campaign's jobs from BullMQ and
// sends each as an email through nodemailer's pooled SMTP transport, as a
// Node.js service built the common way would. bench/peer.sh starts one per
// core.
//
//   node worker.mjs REDIS_PORT SMTP_PORT CONCURRENCY SMTP_CONNECTIONS
//
// SUBJECT and BODY (the environment) are the campaign's templates; `{{ name }}`
// and `{{ email }}` in them are each recipient's. Prints "ready" once it
// takes jobs.
import { Worker } from "bullmq";
import nodemailer from "nodemailer";

const [redisPort, smtpPort, concurrency, connections] = process.argv.slice(2).map(Number);
const subject = process.env.SUBJECT ?? "";
const body = process.env.BODY ?? "";

const transport = nodemailer.createTransport({
  host: "127.0.0.1",
  port: smtpPort,
  secure: false,
  ignoreTLS: true,
  pool: true,
  maxConnections: connections,
  maxMessages: Infinity,
});

const render = (template, recipient) =>
  template.replaceAll("{{ name }}", recipient.name).replaceAll("{{ email }}", recipient.email);

const worker = new Worker(
  "campaign",
  async (job) =>
    transport.sendMail({
      from: "comms@example.com",
      to: job.data.email,
      subject: render(subject, job.data),
      text: render(body, job.data),
    }),
  {
    connection: { host: "127.0.0.1", port: redisPort, maxRetriesPerRequest: null },
    concurrency,
  },
);
worker.on("failed", (job, error) => console.error(`job ${job?.id} failed: ${error.message}`));
await worker.waitUntilReady();
console.log("ready");

const stop = async () => {
  await worker.close();
  transport.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
