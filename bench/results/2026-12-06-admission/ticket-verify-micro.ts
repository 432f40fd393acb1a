import { parseAdmissionKeys, signTicket, verifyTicket } from '../../../src/admission/tokens.ts';
const keys = parseAdmissionKeys('k1:' + 'x'.repeat(40));
const tickets = Array.from({ length: 20000 }, (_, i) => signTicket(keys, { eventId: 3, ticketNo: i + 1, customer: `j1-${i + 1}`, position: i + 1 }));
const cache = new Map(tickets.map((t) => [t, verifyTicket(keys, t)]));
for (let round = 0; round < 3; round++) {
  let t0 = process.hrtime.bigint();
  let n = 0;
  for (let k = 0; k < 10; k++) for (const t of tickets) if (verifyTicket(keys, t)) n++;
  const verifyUs = Number(process.hrtime.bigint() - t0) / 1000 / n;
  t0 = process.hrtime.bigint(); n = 0;
  for (let k = 0; k < 10; k++) for (const t of tickets) if (cache.get(t)) n++;
  const hitUs = Number(process.hrtime.bigint() - t0) / 1000 / n;
  console.log(`verifyTicket ${verifyUs.toFixed(2)} µs/ticket, cached ${hitUs.toFixed(3)} µs/ticket`);
}
