// Live scores: one channel per match (scores:match-1, scores:match-2), published by the
// server's scripted match (a minute every second by default). Every update carries the whole
// score, so the board is right after any gap. "Train tunnel" closes the connection but keeps
// the cursors; leaving it reconnects at those cursors: the server replays exactly the updates
// missed (highlighted), or — when its history (the last 30 per match) no longer reaches back —
// says so with a gap, and the page shows "you missed N updates".

import { startShell } from "/demos/web/shell.js";

const MATCHES = ["match-1", "match-2"];
const $ = (s) => document.querySelector(s);
const seen = Object.fromEntries(MATCHES.map((m) => [m, []])); // seqs delivered, per match
let tunnel = null; // {at: {match: seq}} while offline, then the catch-up tally
let catchUp = null;

function card(match) {
  return document.querySelector(`.match[data-match="${match}"]`);
}

for (const m of MATCHES) {
  card(m).innerHTML = `<h2 class="teams">${m}</h2><div class="board"><span class="score">– : –</span><span class="minute"></span></div><ol class="plain events"></ol>`;
}

function onMessage(msg) {
  const d = msg.data;
  if (!seen[d.match]) return;
  seen[d.match].push(msg.seq);
  const el = card(d.match);
  el.querySelector(".teams").textContent = `${d.teams[0]} v ${d.teams[1]}`;
  el.querySelector(".score").textContent = `${d.score[0]} : ${d.score[1]}`;
  el.querySelector(".minute").textContent = d.event === "full_time" ? "FT" : `${d.minute}'`;
  const li = document.createElement("li");
  const replayed = catchUp && msg.seq <= (catchUp.target[d.match] ?? 0);
  li.className = d.event + (replayed ? " replayed" : "");
  li.textContent = `#${msg.seq} ${d.text}`;
  el.querySelector(".events").prepend(li);
  while (el.querySelector(".events").children.length > 40) el.querySelector(".events").lastChild.remove();
  if (replayed) {
    catchUp.replayed[d.match] = (catchUp.replayed[d.match] ?? 0) + 1;
    showCatchUp();
  }
}

function showCatchUp() {
  const parts = MATCHES.map((m) => {
    const missed = catchUp.missed[m] ?? 0;
    const got = catchUp.replayed[m] ?? 0;
    const n = (k) => `${k} update${k === 1 ? "" : "s"}`;
    return missed
      ? `${m}: you missed ${n(missed)} (history no longer reaches back), then ${n(got)} replayed`
      : `${m}: ${n(got)} replayed`;
  });
  const anyGap = MATCHES.some((m) => catchUp.missed[m]);
  $("#caught").hidden = false;
  $("#caught").className = anyGap ? "banner bad" : "banner";
  $("#caught").textContent = `Back from the tunnel after ${catchUp.seconds.toFixed(0)} s — ${parts.join(" · ")}`;
}

const shell = await startShell({
  channels: MATCHES.map((m) => ({ name: `scores:${m}`, cursor: null })),
  on: {
    message: onMessage,
    gap(g) {
      const m = g.channel.split(":")[1];
      if (catchUp) {
        catchUp.missed[m] = (catchUp.missed[m] ?? 0) + g.missed;
        showCatchUp();
      }
    },
  },
});
shell.start();
window.scores = { seen, state: () => ({ tunnel: !!tunnel, catchUp }) };

async function lastSeqs() {
  const out = {};
  for (const m of MATCHES) out[m] = (await (await fetch(`/api/channels/scores:${m}`)).json()).last_seq ?? 0;
  return out;
}

$("#tunnel").onclick = async () => {
  if (!tunnel) {
    tunnel = { since: performance.now() };
    shell.client.pause();
    $("#tunnel").textContent = "Leave train tunnel";
    $("#tunnel-state").textContent = "offline: nothing arrives; the cursors are kept";
    $("#caught").hidden = true;
  } else {
    // What the server had published when we came back: updates up to there are the missed ones.
    const target = await lastSeqs();
    catchUp = { seconds: (performance.now() - tunnel.since) / 1000, missed: {}, replayed: {}, target };
    tunnel = null;
    shell.client.resume();
    $("#tunnel").textContent = "Enter train tunnel";
    $("#tunnel-state").textContent = "online";
    showCatchUp();
  }
};
