// The peer's campaign: one BullMQ job per recipient, added in bulk (1,000
// a call), each retried with backoff and removed once done (as a
// production queue would be configured, so that Redis does not keep every
// job); then waits until no job is left to run.
//
//   node produce.mjs REDIS_PORT USERS
//
// Prints one JSON object: enqueued_s (adding every job), drained_s (from
// the first add until the queue is empty) and failed (jobs whose tries ran
// out).
import { Queue } from "bullmq";

const [redisPort, users] = process.argv.slice(2).map(Number);
const queue = new Queue("campaign", {
  connection: { host: "127.0.0.1", port: redisPort },
  defaultJobOptions: {
    attempts: 5,
    backoff: { type: "exponential", delay: 1000 },
    removeOnComplete: true,
    removeOnFail: false,
  },
});

const started = performance.now();
const chunk = 1000;
for (let first = 1; first <= users; first += chunk) {
  const jobs = [];
  for (let id = first; id < Math.min(first + chunk, users + 1); id++) {
    jobs.push({ name: "email", data: { name: `User ${id}`, email: `user${id}@example.com` } });
  }
  await queue.addBulk(jobs);
}
const enqueued = performance.now();

for (;;) {
  const counts = await queue.getJobCounts("waiting", "active", "delayed", "prioritized", "paused", "wait");
  if (Object.values(counts).every((count) => count === 0)) break;
  await new Promise((resolve) => setTimeout(resolve, 100));
}
const drained = performance.now();
const failed = await queue.getFailedCount();
console.log(
  JSON.stringify({
    enqueued_s: +((enqueued - started) / 1000).toFixed(2),
    drained_s: +((drained - started) / 1000).toFixed(2),
    failed,
  }),
);
await queue.close();
