// Drives `sluice collect` with the real Snowplow Node tracker
// (@snowplow/node-tracker from npm). Usage:
//   node tracker.mjs NODE_MODULES PORT TRACKERS EVENTS PACE_MS
// Each tracker sends EVENTS events (page views, structured events and
// self-describing events with a context, in turn) over POST batches. It
// prints JSON lines: {"tracked": payload} for every event as tracked,
// {"ok": [eid…]} for every batch the collector answered 200,
// {"failed": n, "status": s, "retry": bool} for a failed request, and
// {"done": true} once every tracker flushed.
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const [mods, port, trackers, events, pace] = process.argv.slice(2)
const sp = await import(pathToFileURL(join(mods, '@snowplow/node-tracker/dist/index.module.js')).href)
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

const all = []
const pending = new Set() // tracked, not yet answered 200
for (let t = 0; t < Number(trackers); t++) {
  const tracker = sp.newTracker(
    { namespace: `sp${t}`, appId: `app-${t % 2}`, encodeBase64: t % 2 === 0 },
    {
      endpoint: '127.0.0.1', port: Number(port), protocol: 'http', eventMethod: 'post', bufferSize: 5,
      retryFailedRequests: true,
      onRequestSuccess: (batch) => {
        for (const p of batch) pending.delete(p.eid)
        out({ ok: batch.map((p) => p.eid) })
      },
      onRequestFailure: (f) => out({ failed: f.events.length, status: f.status ?? 0, retry: f.willRetry }),
    },
  )
  tracker.setUserId(`user-${t}`)
  tracker.setDomainUserId(`duid-${t}`)
  tracker.setSessionId(`sess-${t}`)
  tracker.setPlatform('srv')
  all.push(tracker)
}

const ctx = (i) => [{ schema: 'iglu:com.acme/user_context/jsonschema/1-0-0', data: { tier: i % 3 === 0 ? 'gold' : 'free', n: i } }]
for (let i = 0; i < Number(events); i++) {
  for (let t = 0; t < all.length; t++) {
    const tr = all[t]
    let p
    switch (i % 3) {
      case 0:
        p = tr.track(sp.buildPageView({ pageUrl: `https://shop.example.com/p/${i}`, pageTitle: `Page ${i}`, referrer: 'https://www.google.com/' }))
        break
      case 1:
        p = tr.track(sp.buildStructEvent({ category: 'projects:new', action: 'click_button', label: `create-${i}`, property: 'blank', value: i }), ctx(i))
        break
      default:
        p = tr.track(sp.buildSelfDescribingEvent({ event: { schema: 'iglu:com.acme/checkout/jsonschema/1-0-0', data: { step: i, total: i * 1.5, sku: `sku-${t}-${i}` } } }), ctx(i))
    }
    pending.add(p.eid)
    out({ tracked: p })
  }
  if (Number(pace) > 0) await sleep(Number(pace))
}
// Flush until every event was answered 200 (failed batches are retried),
// for at most 60 s.
for (let round = 0; round < 240 && pending.size > 0; round++) {
  await Promise.all(all.map((t) => t.flush()))
  if (pending.size > 0) await sleep(250)
}
out({ done: true, unanswered: pending.size })
