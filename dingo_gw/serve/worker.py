"""The service core: accept alerts into the job store, and analyse queued jobs one at a time with
the warm networks (same code path as ``dingo_analyze``: :func:`dingo_gw.inference.analyze.analyze`).

Per job, in ``<results_dir>/<job_id>/``: ``<job_id>_result.hdf5`` (bilby's format; ``.json`` with
``analysis.result_format: json``) or
``<job_id>_failed_proposal.json``, ``<job_id>_corner.png``, ``<job_id>_skymap.fits`` (multi-order,
when the posterior holds ra/dec) and ``<job_id>_summary.json``. A job whose analysis raises is
marked failed with its error and the worker goes on with the next one.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import traceback
from pathlib import Path

import numpy as np

from dingo_gw.errors import ConfigError, DataError, DingoError
from dingo_gw.io.atomic import atomic_write
from dingo_gw.serve.alert import AlertError, parse_alert, prepare_alert, redact_paths
from dingo_gw.serve.networks import NetworkRegistry
from dingo_gw.serve.store import JobStore

logger = logging.getLogger(__name__)


def summary_dict(job: dict, result, files: dict, timings: dict, skymap_info: dict | None) -> dict:
    """The summary JSON: medians and 90 % intervals (weighted quantiles), evidence, diagnostics."""
    from dingo_gw.io.hdf5 import to_jsonable
    from dingo_gw.inference.importance.importance_sampling import PARETO_K_RELIABLE
    from dingo_gw.results import UNITS, add_derived_parameters, weighted_quantiles

    k_hat = result.meta_data.get("pareto_k")
    k_hat = float(k_hat) if k_hat is not None and np.isfinite(k_hat) else None
    # reliable: a posterior whose weights are not heavy-tailed (Pareto k <= 0.7); None if k is unknown
    reliable = None if k_hat is None else bool(result.ok and k_hat <= PARETO_K_RELIABLE)

    out = {"job_id": job["job_id"], "alert_id": job["alert_id"], "version": job["version"],
           "gps": job["request"]["gps"], "network": job["network"], "outcome": result.status,
           "failure_reason": result.failure_reason or None, "log_evidence": result.log_evidence,
           "log_evidence_err": result.log_evidence_err, "log_bayes_factor": result.log_bayes_factor,
           "n_eff": result.n_eff, "sample_efficiency": result.sample_efficiency,
           "pareto_k": k_hat, "reliable": reliable,
           "num_proposal_samples": result.num_samples, "timings": timings,
           "files": {k: Path(v).name for k, v in files.items()}, "sky": skymap_info, "parameters": {}}
    if result.ok:
        samples, w = add_derived_parameters(result.samples), result.weights
        for name in result.parameter_names():
            if name in samples:
                lo, med, hi = weighted_quantiles(samples[name], w, [0.05, 0.5, 0.95])
                out["parameters"][name] = {"median": med, "lower_90": lo, "upper_90": hi,
                                           "unit": UNITS.get(name, "")}
    return to_jsonable(out)


class Service:
    """Job store + warm networks + one analysis thread. ``start()`` / ``stop()`` the thread."""

    def __init__(self, config, networks: NetworkRegistry | None = None):
        self.config = config
        self.state_dir = Path(config.state_dir)
        self.results_dir = Path(config.results_dir)
        for d in (self.state_dir, self.results_dir):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise DataError(f"cannot create folder {d}: {e.strerror or e}") from None
        self._lock_file = open(self.state_dir / "service.lock", "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(f"another dingo_serve is using the state folder {self.state_dir}") from None
        self.store = JobStore(self.state_dir / "jobs.sqlite")
        requeued = self.store.requeue_interrupted()
        if requeued:
            logger.warning("requeued %d job(s) interrupted by a previous stop: %s", len(requeued), ", ".join(requeued))
        self.networks = networks if networks is not None else NetworkRegistry.load(config.networks)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.current: str | None = None

    # -- accepting alerts ----------------------------------------------------------------------
    def submit(self, body: bytes | str | dict) -> tuple[dict, bool]:
        """Validate, resolve and persist an alert; (job, created). AlertError if it is refused."""
        alert = parse_alert(body)
        prepared = prepare_alert(alert, self.networks, self.config.data_dirs)
        job, created = self.store.submit(alert.alert_id, prepared.content_hash, alert.model_dump(mode="json"),
                                         prepared.request(), prepared.network)
        if created:
            logger.info("queued %s (network %s)", job["job_id"], job["network"])
            self._wake.set()
        return job, created

    # -- the analysis thread -------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dingo_serve-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self) -> None:
        self.stop()
        self.networks.close()
        self.store.close()
        self._lock_file.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            job = self.store.claim_next()
            if job is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self.current = job["job_id"]
            try:
                self.run_job(job)
            finally:
                self.current = None

    def run_job(self, job: dict) -> None:
        """Analyse one claimed (running) job and record its end in the store."""
        t0 = time.perf_counter()
        try:
            files, timings, outcome = self._analyze(job)
        except DingoError as e:
            logger.error("job %s failed: %s", job["job_id"], e)
            self.store.fail(job["job_id"], str(e), {"total": time.perf_counter() - t0})
            return
        except Exception as e:  # a bug: keep serving, keep the traceback in the log
            logger.error("job %s failed:\n%s", job["job_id"], traceback.format_exc())
            self.store.fail(job["job_id"], f"{type(e).__name__}: {e}", {"total": time.perf_counter() - t0})
            return
        self.store.finish(job["job_id"], outcome, str(self.results_dir / job["job_id"]),
                          {k: Path(v).name for k, v in files.items()}, timings)
        logger.info("finished %s (%s) in %.1f s", job["job_id"], outcome, time.perf_counter() - t0)

    def _analyze(self, job: dict):
        from dingo_gw.inference.analyze import AnalysisSettings, analyze
        from dingo_gw.serve.skymap import credible_areas, sky_map_from_samples, write_sky_map

        req, a = job["request"], self.config.analysis
        warm = self.networks[job["network"]]
        jid = job["job_id"]
        outdir = self.results_dir / jid
        settings = AnalysisSettings(
            gps=req["gps"], strain_files=req["strain_files"], psd_files=req["psd_files"],
            injection=req["injection"], data_dirs=list(self.config.data_dirs), outdir=str(outdir), label=jid,
            num_samples=a.num_samples, seed=a.seed, gibbs_iterations=a.gibbs_iterations, gibbs_chains=a.gibbs_chains,
            workers=a.workers, glitch=a.glitch, lines=a.lines, threads=a.threads, corner=a.corner, progress=False,
            refine=a.refine, refine_efficiency=a.refine_efficiency, refine_particles=a.refine_particles,
            refine_passes=a.refine_passes, refine_samples=a.refine_samples, relative_binning=a.relative_binning,
            distance_marginalization=a.distance_marginalization, target_neff=a.target_neff,
            max_samples=a.max_samples, max_time=a.max_time, result_format=a.result_format,
        )
        out = analyze(settings, network=warm.network, generator=warm.generator)
        files, timings = dict(out.files), dict(out.timings)
        result, sky = out.result, None
        if a.skymap and result.ok and result.posterior is not None and {"ra", "dec"} <= set(result.posterior):
            t = time.perf_counter()
            try:
                table = sky_map_from_samples(result.posterior["ra"], result.posterior["dec"], a.skymap_samples, a.seed)
                files["skymap"] = write_sky_map(table, outdir / f"{jid}_skymap.fits", objid=jid, gps_time=req["gps"],
                                                instruments=warm.network.detectors)
                sky = credible_areas(table)
            except DataError as e:
                sky = {"error": str(e)}
            timings["skymap"] = time.perf_counter() - t
        path = outdir / f"{jid}_summary.json"
        files["summary"] = path
        with atomic_write(path) as tmp:
            tmp.write_text(json.dumps(summary_dict(job, result, files, timings, sky), indent=2))
        return files, timings, result.status

    # -- status --------------------------------------------------------------------------------
    def status(self, ident: str) -> dict | None:
        """Status of a job id (``<alert>.v<N>``), or of an alert id's latest version."""
        job = self.store.get(ident)
        versions = None
        if job is None:
            versions = self.store.versions(ident)
            if not versions:
                return None
            job = versions[-1]
        return public_job(job, versions if versions is not None else self.store.versions(job["alert_id"]))


def public_job(job: dict, versions: list[dict] | None = None) -> dict:
    """What GET /alerts/{id} shows of a job: state, outcome, error, timings, result links."""
    jid = job["job_id"]
    out = {k: job.get(k) for k in ("job_id", "alert_id", "version", "status", "outcome", "error", "network",
                                   "attempts", "created", "started", "finished")}
    if out["error"]:
        out["error"] = redact_paths(out["error"])
    out["latency"] = (job["finished"] - job["created"]) if job.get("finished") else None
    out["timings"] = job.get("timings") or {}
    out["files"] = {k: f"/alerts/{jid}/files/{name}" for k, name in (job.get("files") or {}).items()}
    out["alert"] = job.get("alert")
    if versions is not None:
        out["versions"] = [{"job_id": v["job_id"], "status": v["status"]} for v in versions]
    return out


__all__ = ["Service", "AlertError", "public_job", "summary_dict"]
