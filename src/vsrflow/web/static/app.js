// vsrflow web page: plain JavaScript, no build step. Every write sends the CSRF header.
"use strict";
const vsrflow = (() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const mode = document.querySelector('meta[name="vsrflow-mode"]').content;

  async function api(method, url, body) {
    const init = { method, headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    return answer(response);
  }

  async function answer(response) {
    let data = null;
    try { data = await response.json(); } catch (e) { data = { error: await response.text() }; }
    if (!response.ok) {
      const err = new Error(data && data.error ? data.error : `HTTP ${response.status}`);
      err.hint = data && data.hint;
      throw err;
    }
    return data;
  }

  function errorText(err) { return err.hint ? `${err.message} (${err.hint})` : err.message; }

  function fmtSeconds(s) {
    if (s === null || s === undefined) return "";
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return h ? `${h} h ${m} min` : m ? `${m} min ${r} s` : `${r} s`;
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  // ---- upload page -------------------------------------------------------------------------
  function uploadPage() {
    const drop = document.getElementById("drop");
    const input = document.getElementById("files");
    const list = document.getElementById("uploads");
    const tpl = document.getElementById("upload-card");
    input.addEventListener("change", () => { for (const f of input.files) handle(f); input.value = ""; });
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault(); drop.classList.remove("over");
      for (const f of e.dataTransfer.files) handle(f);
    });

    function handle(file) {
      const card = tpl.content.firstElementChild.cloneNode(true);
      card.querySelector(".name").textContent = file.name;
      list.prepend(card);
      const status = card.querySelector(".status");
      const bar = card.querySelector(".bar");
      (mode === "local" ? uploadLocal(file, card, bar, status) : uploadS3(file, card, bar, status))
        .catch((err) => { status.textContent = errorText(err); status.className = "status error"; });
    }

    function showProbe(card, probe) {
      const dl = card.querySelector(".probe");
      const rows = [
        ["duration", `${probe.duration} s (${probe.frames} frames at ${probe.fps} fps)`],
        ["size", `${probe.width}x${probe.height}, ${probe.size_text}`],
        ["scan", probe.scan], ["video", `${probe.codec} in ${probe.container}`],
        ["streams", probe.streams.join("; ")],
      ];
      for (const [k, v] of rows) { dl.append(el("dt", k)); dl.append(el("dd", v)); }
    }

    function put(url, body, onProgress, headers) {
      // XMLHttpRequest, not fetch: it reports upload progress.
      return new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open("PUT", url);
        for (const [k, v] of Object.entries(headers || {})) xhr.setRequestHeader(k, v);
        xhr.upload.onprogress = (e) => onProgress(e.loaded);
        xhr.onload = () => resolve(xhr);
        xhr.onerror = () => reject(new Error(`upload to ${new URL(url, location.href).host} failed (network or CORS)`));
        xhr.send(body);
      });
    }

    async function uploadLocal(file, card, bar, status) {
      status.textContent = "uploading…";
      const xhr = await put(`/api/uploads?name=${encodeURIComponent(file.name)}`, file,
        (n) => { bar.value = n / Math.max(1, file.size); },
        { "X-CSRF-Token": csrf, "Content-Type": "application/octet-stream" });
      let data;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = { error: xhr.responseText }; }
      if (xhr.status >= 400) {
        const err = new Error(data.error || `HTTP ${xhr.status}`); err.hint = data.hint; throw err;
      }
      bar.value = 1;
      status.textContent = "uploaded and probed";
      showProbe(card, data.probe);
      const estimate = card.querySelector(".estimate");
      const modelSel = document.getElementById("model");
      const scaleSel = document.getElementById("scale");
      const showEstimate = () => {
        const id = modelSel.value || data.default_models[scaleSel.value];
        const e = data.estimates[id];
        estimate.textContent = e && e.seconds !== null
          ? `estimate with ${id}: about ${fmtSeconds(e.seconds)} of upscaling (${e.basis})`
          : `no estimate for ${id || "the default preset (no model for this scale here)"}`;
      };
      modelSel.addEventListener("change", showEstimate);
      scaleSel.addEventListener("change", showEstimate);
      showEstimate();
      const actions = card.querySelector(".actions");
      actions.hidden = false;
      // Several real video streams (multi-angle, picture-in-picture): the job needs to know which one.
      const streamSel = card.querySelector(".video-stream-choice");
      if (data.probe.video_streams.length > 1) {
        for (const index of data.probe.video_streams) {
          const text = data.probe.streams.find((s) => s.startsWith(`#${index} `)) || `#${index}`;
          const option = el("option", text); option.value = String(index); streamSel.append(option);
        }
        card.querySelector(".video-stream").hidden = false;
      }
      card.querySelector(".start").addEventListener("click", async (ev) => {
        ev.target.disabled = true;
        try {
          const job = await api("POST", "/api/jobs", {
            upload_id: data.upload_id,
            model: modelSel.value || null,
            preset: null,
            scale: Number(document.getElementById("scale").value),
            container: document.getElementById("container").value,
            deinterlace: document.getElementById("deinterlace").value,
            prefilter: document.getElementById("prefilter").value,
            video_stream: data.probe.video_streams.length > 1 ? Number(streamSel.value) : null,
          });
          status.innerHTML = "";
          status.append("job started: ");
          const a = el("a", job.job_id); a.href = `/jobs/${job.job_id}`; status.append(a);
          status.append(" — "); const all = el("a", "all jobs"); all.href = "/jobs"; status.append(all);
        } catch (err) { status.textContent = errorText(err); status.className = "status error"; ev.target.disabled = false; }
      });
      const preview = card.querySelector(".run-preview");
      if (preview) preview.addEventListener("click", () => runPreview(card, data.upload_id));
    }

    async function runPreview(card, uploadId) {
      const out = card.querySelector(".preview-status");
      const grid = card.querySelector(".preview-grid");
      const models = [...card.querySelectorAll(".preview-models input:checked")].map((i) => i.value);
      grid.innerHTML = "";
      try {
        const started = await api("POST", "/api/previews", {
          upload_id: uploadId, models, scale: Number(document.getElementById("scale").value),
          start: Number(card.querySelector(".preview-start").value),
          seconds: Number(card.querySelector(".preview-seconds").value),
        });
        const id = started.preview_id;
        for (;;) {
          const p = await api("GET", `/api/previews/${id}`);
          out.textContent = `preview ${p.state}: ` + Object.entries(p.models).map(([m, s]) => `${m} ${s.state}`).join(", ")
            + (p.error ? ` — ${p.error}` : "");
          if (p.state === "done" || p.state === "failed") {
            if (p.state === "done") {
              const names = ["source", ...Object.keys(p.models).filter((m) => p.models[m].state === "done")];
              for (const n of names) {
                const fig = el("figure"); const v = el("video"); v.controls = true; v.muted = true; v.loop = true;
                v.preload = "auto"; v.src = `/api/previews/${id}/${encodeURIComponent(n)}.mp4`; v.className = "preview-video";
                fig.append(v); fig.append(el("figcaption", n)); grid.append(fig);
              }
            }
            return;
          }
          await new Promise((r) => setTimeout(r, 1000));
        }
      } catch (err) { out.textContent = errorText(err); out.className = "preview-status error"; }
    }

    async function uploadS3(file, card, bar, status) {
      const folder = document.getElementById("folder").value;
      status.textContent = "starting the upload…";
      const plan = await api("POST", "/api/s3/uploads", { name: file.name, folder, size: file.size });
      const done = new Array(plan.urls.length).fill(0);
      const progress = () => { bar.value = done.reduce((a, b) => a + b, 0) / Math.max(1, file.size); };
      status.textContent = `uploading to ${plan.key} (${plan.urls.length} part${plan.urls.length > 1 ? "s" : ""})…`;
      let next = 0;
      async function worker() {
        while (next < plan.urls.length) {
          const i = next++;
          const blob = file.slice(i * plan.part_bytes, Math.min(file.size, (i + 1) * plan.part_bytes));
          const xhr = await put(plan.urls[i], blob, (n) => { done[i] = n; progress(); });
          if (xhr.status >= 300) throw new Error(`part ${i + 1} refused by S3: HTTP ${xhr.status}`);
          done[i] = blob.size; progress();
        }
      }
      await Promise.all([worker(), worker(), worker()]);
      await api("POST", "/api/s3/uploads/complete", { key: plan.key, upload_id: plan.upload_id, parts: plan.urls.length });
      bar.value = 1;
      status.innerHTML = "";
      status.append(`uploaded to ${plan.key}; the job starts from the upload event — `);
      const a = el("a", "watch the jobs"); a.href = "/jobs"; status.append(a);
      // The probe of the stored object (headers and first frames, read by the server via a presigned GET).
      try {
        const facts = await api("GET", `/api/s3/uploads/facts?key=${encodeURIComponent(plan.key)}`);
        showProbe(card, facts.probe);
        const e = facts.estimate;
        card.querySelector(".estimate").textContent = e.seconds !== null
          ? `preset ${e.preset} x${e.scale} (${e.model} here): at best ${fmtSeconds(e.seconds)} of upscaling on one H100/H200 at its compute ceiling; the cluster runs chunks in parallel`
          : `preset ${e.preset} x${e.scale}: no estimate (the model is chosen on the cluster)`;
      } catch (err) {
        card.querySelector(".estimate").textContent = `probe: ${errorText(err)}`;
      }
    }
  }

  // ---- jobs page ---------------------------------------------------------------------------
  function jobRow(job) {
    const tr = el("tr"); tr.dataset.job = job.id; tr.dataset.state = job.state;
    const name = el("td"); const a = el("a", job.name); a.href = `/jobs/${job.id}`; name.append(a); tr.append(name);
    const state = el("td", job.state, `state ${job.state}`);
    if (job.reason) { state.append(el("div", job.reason, "reason small")); }
    tr.append(state);
    tr.append(el("td", job.total_chunks ? `${job.done_chunks}/${job.total_chunks} chunks` : ""));
    const running = !["done", "failed", "superseded"].includes(job.state);
    tr.append(el("td", job.fps ? `${job.fps} fps` + (running ? `, ETA ${fmtSeconds(job.eta_s)}` : "") : ""));
    tr.append(el("td", job.model ? `${job.model}${job.scale ? " x" + job.scale : ""}` : ""));
    const act = el("td");
    if (job.has_result) {
      const c = el("a", "compare"); c.href = `/jobs/${job.id}`; act.append(c); act.append(" ");
      const d = el("a", "download"); d.href = `/api/jobs/${job.id}/download`; d.setAttribute("download", ""); act.append(d);
    }
    tr.append(act);
    return tr;
  }

  function watchJobs(onJobs) {
    const live = document.getElementById("live");
    const source = new EventSource("/api/events");
    source.addEventListener("jobs", (e) => {
      const data = JSON.parse(e.data);
      if (live) live.textContent = data.error ? `error: ${data.error}` : `live · updated ${new Date().toLocaleTimeString()}`;
      if (data.jobs) onJobs(data.jobs);
    });
    source.onerror = () => { if (live) live.textContent = "reconnecting…"; };
    return source;
  }

  function jobsPage() {
    const body = document.querySelector("#jobs tbody");
    watchJobs((jobs) => {
      body.replaceChildren(...jobs.map(jobRow));
      if (!jobs.length) { const tr = el("tr"); const td = el("td", "no jobs yet"); td.colSpan = 6; tr.append(td); body.append(tr); }
    });
  }

  // ---- compare page ------------------------------------------------------------------------
  function comparePage() {
    const stateEl = document.getElementById("job-state");
    const jobId = stateEl.dataset.job;
    if (stateEl.dataset.state !== "done" && stateEl.dataset.state !== "failed") {
      watchJobs((jobs) => {
        const job = jobs.find((j) => j.id === jobId);
        if (!job) return;
        stateEl.textContent = job.text;
        if (job.state === "done" || job.state === "failed") location.reload();
      });
      return;
    }
    const show = document.getElementById("show");
    if (!show) return;
    const t = document.getElementById("time");
    const load = () => {
      const time = Math.max(0, Number(t.value) || 0);
      const src = `/api/jobs/${jobId}/frame?which=source&t=${time}`;
      const res = `/api/jobs/${jobId}/frame?which=result&t=${time}`;
      document.getElementById("frame-source").src = src;
      document.getElementById("frame-result").src = res;
      document.getElementById("slider-source").src = src;
      document.getElementById("slider-result").src = res;
    };
    show.addEventListener("click", load);
    const pos = document.getElementById("slider-pos");
    const top = document.getElementById("slider-top");
    const move = () => { top.style.width = `${pos.value}%`; };
    pos.addEventListener("input", move); move();
    load();
  }

  return { uploadPage, jobsPage, comparePage, api };
})();
