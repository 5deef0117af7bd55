"use strict";
// The page of `python -m unet_industrial.serve`. Picked or dropped videos are uploaded one at a
// time and queued on the server, which detects them in turn; each gets a card that follows its
// job and then shows the result. Every element is built through the DOM (textContent, never
// innerHTML): file names and reports are data, not markup.

const STAGES = ["upload", "queued", "faces", "crops", "model", "overlay", "encoding"];
const POLL_MS = 500;
const SVG = "http://www.w3.org/2000/svg";
// The plot's size in SVG units and its margins (left for the axis labels, top for the legend).
const PLOT = {width: 640, height: 240, left: 48, right: 16, top: 32, bottom: 36};
const waiting = [];  // Cards whose file is not uploaded yet, in the order they were given.
let settings = null;
let uploading = false;

function svg(name, attributes, parent) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (parent) parent.appendChild(element);
  return element;
}

function text(parent, x, y, content, anchor) {
  const label = svg("text", {x, y, "text-anchor": anchor || "start"}, parent);
  label.textContent = content;
  return label;
}

// Per-frame scores against the threshold the verdict is drawn with: for the fake_fraction
// aggregation the frame threshold (frames above it are counted), else the video threshold
// (the aggregate of these scores is compared with it).
function plotScores(container, report) {
  const record = report.videos[0];
  const calibration = report.calibration;
  const counted = record.aggregation === "fake_fraction";
  const line = counted ? calibration.frame_threshold : record.threshold;
  const lineName = counted ? "frame threshold" : `video threshold (${record.aggregation})`;
  const scored = record.frames.filter((frame) => frame.score !== null);
  const lastIndex = Math.max(1, ...record.frames.map((frame) => frame.index));
  const top = Math.min(1, Math.max(line, ...scored.map((frame) => frame.score)) * 1.15) || 1;
  const {width, height, left, right, bottom} = PLOT;
  const x = (index) => left + (index / lastIndex) * (width - left - right);
  const y = (score) => height - bottom - (score / top) * (height - bottom - PLOT.top);

  const chart = svg("svg", {viewBox: `0 0 ${width} ${height}`, class: "scores", role: "img",
                            "aria-label": `Scores of ${scored.length} frames`});
  svg("line", {x1: left, y1: y(0), x2: width - right, y2: y(0), class: "axis"}, chart);
  svg("line", {x1: left, y1: y(0), x2: left, y2: y(top), class: "axis"}, chart);
  for (const tick of [0, top / 2, top]) {
    text(chart, left - 6, y(tick) + 4, tick.toFixed(top < 0.1 ? 3 : 2), "end");
  }
  text(chart, left, height - 6, "frame 0");
  text(chart, width - right, height - 6, `frame ${lastIndex}`, "end");
  svg("line", {x1: left, y1: y(line), x2: width - right, y2: y(line), class: "threshold"}, chart);
  // The legend, above the plot where no point can hide it.
  const legend = width - right - 250;
  svg("line", {x1: legend, y1: 12, x2: legend + 24, y2: 12, class: "threshold legend"}, chart);
  text(chart, legend + 30, 16, `${lineName} ${line.toFixed(3)}`).classList.add("threshold-label");
  if (scored.length > 1) {
    const points = scored.map((frame) => `${x(frame.index)},${y(frame.score)}`).join(" ");
    svg("polyline", {points, class: "trace"}, chart);
  }
  for (const frame of scored) {
    const point = svg("circle", {cx: x(frame.index), cy: y(frame.score), r: 4,
                                 class: frame.score >= line ? "point high" : "point"}, chart);
    svg("title", {}, point).textContent = `frame ${frame.index}: ${frame.score.toFixed(4)}`;
  }
  for (const frame of record.frames.filter((frame) => frame.score === null)) {
    const mark = svg("line", {x1: x(frame.index), y1: y(0) - 4, x2: x(frame.index), y2: y(0) + 4,
                              class: "no-face"}, chart);
    svg("title", {}, mark).textContent = `frame ${frame.index}: no face`;
  }
  container.replaceChildren(chart);
}

class Card {
  constructor(file) {
    this.file = file;
    this.jobId = null;
    this.element = document.getElementById("job-template").content.firstElementChild.cloneNode(true);
    this.part = (name) => this.element.querySelector(`.${name}`);
    this.part("name").textContent = file.name;
    this.part("remove").addEventListener("click", () => this.remove());
    document.getElementById("jobs").prepend(this.element);
  }

  stage(name, fraction, message) {
    const current = STAGES.indexOf(name);
    this.element.querySelectorAll(".steps li").forEach((step, index) => {
      step.classList.toggle("done", index < current);
      step.classList.toggle("current", index === current);
    });
    this.part("progress").value = (current + (fraction || 0)) / STAGES.length;
    this.part("status").textContent = message;
  }

  fail(message) {
    this.element.classList.add("failed");
    this.part("progress").hidden = true;
    this.part("status").textContent = "";
    const error = this.part("error");
    error.textContent = message;
    error.hidden = false;
  }

  show(status) {
    const report = status.report;
    const record = report.videos[0];
    this.element.classList.add("finished");
    this.element.querySelectorAll(".steps li").forEach((step) => {
      step.classList.remove("current");
      step.classList.add("done");
    });
    this.part("progress").hidden = true;
    this.part("status").textContent = "";
    const verdict = this.part("verdict");
    const frames = `${record.frames.length} sampled frames`;
    if (record.verdict) {
      const relation = record.verdict === "fake" ? "≥" : "<";
      verdict.textContent = `${record.verdict === "fake" ? "Fake" : "Real"}: score ${record.score.toFixed(3)} ` +
                            `${relation} threshold ${record.threshold.toFixed(3)}`;
      verdict.classList.add(record.verdict);
      this.part("rule").textContent =
          `The ${record.aggregation} of the frame scores over ${frames}, ${record.frames_with_face} with a ` +
          `face; a frame's score is the ${report.calibration.frame_score} of its fake-pixel probabilities` +
          (report.calibration.frame_score === "area" ? ` above ${report.calibration.pixel_threshold}` : "") +
          `. Run ${report.run_dir}, ${report.checkpoint}.`;
    } else {
      verdict.textContent = `No verdict: no face found in ${frames}`;
      verdict.classList.add("none");
    }
    plotScores(this.part("plot"), report);
    const overlay = this.part("overlay");
    if (status.overlay) overlay.src = status.overlay;
    else this.part("overlay-figure").hidden = true;
    const stills = this.part("stills");
    for (const still of status.stills || []) {
      const figure = document.createElement("figure");
      const image = document.createElement("img");
      image.src = still.url;
      image.alt = `frame ${still.index}`;
      const caption = document.createElement("figcaption");
      caption.textContent = `frame ${still.index}: score ${still.score.toFixed(3)}`;
      figure.append(image, caption);
      stills.appendChild(figure);
    }
    this.part("download").href = status.download;
    this.part("result").hidden = false;
  }

  async follow() {
    while (this.element.isConnected) {
      const response = await fetch(`/api/jobs/${this.jobId}`).catch(() => null);
      const status = response && await response.json().catch(() => null);
      if (!response || !status) return this.fail("the server could not be reached");
      if (!response.ok) return this.fail(status.error);
      if (status.state === "done") return this.show(status);
      if (status.state === "failed") return this.fail(status.error);
      if (status.state === "queued") {
        const ahead = status.ahead === 1 ? "1 video" : `${status.ahead} videos`;
        this.stage("queued", 0, status.ahead ? `Waiting: ${ahead} ahead` : "Starting");
      } else {
        const step = this.element.querySelector(`.steps li[data-stage="${status.stage}"]`);
        this.stage(status.stage, 0, step ? `${step.textContent}…` : "");
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  remove() {
    if (this.jobId) fetch(`/api/jobs/${this.jobId}`, {method: "DELETE"});
    const index = waiting.indexOf(this);
    if (index >= 0) waiting.splice(index, 1);
    this.element.remove();
  }
}

function upload(card) {
  return new Promise((resolve) => {
    const form = new FormData();
    form.append("video", card.file, card.file.name);
    const request = new XMLHttpRequest();
    request.open("POST", "/api/jobs");
    request.responseType = "json";
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) {
        card.stage("upload", event.loaded / event.total, `Uploading: ${Math.round(100 * event.loaded / event.total)} %`);
      }
    });
    request.addEventListener("load", () => resolve({status: request.status, body: request.response}));
    request.addEventListener("error", () => resolve({status: 0, body: null}));
    request.send(form);
  });
}

// Uploads the waiting files one at a time, so that the first is detected while the others upload.
async function pump() {
  if (uploading) return;
  uploading = true;
  while (waiting.length) {
    const card = waiting.shift();
    const {status, body} = await upload(card);
    if (status === 202 && body) {
      card.jobId = body.id;
      card.follow();
    } else {
      card.fail((body && body.error) || "the server could not be reached");
    }
  }
  uploading = false;
}

function add(files) {
  for (const file of files) {
    const card = new Card(file);
    if (file.size > settings.max_upload_bytes) {
      card.fail(`${file.name} is larger than this server's limit of ${megabytes(settings.max_upload_bytes)} MB`);
    } else if (file.size === 0) {
      card.fail(`${file.name} is empty`);
    } else {
      card.stage("upload", 0, "Waiting to upload");
      waiting.push(card);
    }
  }
  pump();
}

function megabytes(bytes) {
  return Math.floor(bytes / (1024 * 1024));
}

async function start() {
  const notice = document.getElementById("notice");
  try {
    settings = await (await fetch("/api/config")).json();
  } catch (error) {
    notice.textContent = "The server could not be reached; reload the page when it runs.";
    notice.hidden = false;
    return;
  }
  const calibration = settings.calibration;
  document.getElementById("about").textContent =
      `Detector: run ${settings.run}; ${settings.frames_per_video} frames sampled per video; ` +
      `a video is called fake when the ${calibration.aggregation} of its frame scores reaches ` +
      `${calibration.video_threshold.toFixed(3)}.`;
  document.getElementById("limit").textContent = `(up to ${megabytes(settings.max_upload_bytes)} MB each)`;
  const input = document.getElementById("file");
  input.addEventListener("change", () => {
    add(Array.from(input.files));
    input.value = "";
  });
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    add(Array.from(event.dataTransfer.files));
  });
}

start();
