"""Serving: one worker in-process, or N forked workers sharing one listening socket."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from types import FrameType

from aiohttp import web

from proxy.components import load_vocab, release_freed_memory
from proxy.config import Config, ServerConfig
from proxy.server.app import build_app
from proxy.server.gc_tuning import tune_runtime
from proxy.telemetry.logging import configure_logging, get_logger

log = get_logger("proxy.server.workers")


def install_event_loop_policy() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def arm_exit_watchdog(server: ServerConfig) -> None:
    """From shutdown on, a worker that has not exited within the drain plus the grace is stuck (a cleanup
    that never returns, a thread that never joins): faulthandler's own C thread, which needs no GIL and no
    event loop, then prints every thread's stack to stderr and exits 1, so the hang is seen and explained
    instead of ending in a silent SIGKILL."""
    faulthandler.dump_traceback_later(server.drain_timeout_s + server.exit_grace_s, exit=True)


def load_token_tables(config: Config) -> None:
    """The tiktoken tables the configured models need (~65 MB for o200k_base and cl100k_base; none until
    first need with `tokens.prompt_estimate: bound`, see components.load_vocab), built before the event loop
    starts; in the supervisor, before the fork, so that the workers share them copy-on-write
    (tiktoken never writes them once built) where each would build its own. Built on this thread rather
    than in the loop's executor, they also take ~5 MB less: no second malloc arena is grown for them."""
    load_vocab(config)
    release_freed_memory()


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
HANDLED_SIGNALS = (*STOP_SIGNALS, signal.SIGHUP)


def run_worker(config: Config, sock: socket.socket | None = None, host: str | None = None,
               port: int | None = None, egress_sock: socket.socket | None = None) -> None:
    # A forked worker starts with the supervisor's handlers (which would signal *its* children) and with
    # these signals blocked (run_supervisor blocks them around the fork): until aiohttp and the policy
    # reloader install their own, a stop is only remembered, and acted on once start-up is done.
    early: list[int] = []
    for signum in HANDLED_SIGNALS:
        signal.signal(signum, lambda received, _: early.append(received))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)
    configure_logging(config.telemetry.log_level)
    install_event_loop_policy()
    faulthandler.enable()  # a crash in native code (regorus, tiktoken, uvloop) leaves its stack on stderr
    load_token_tables(config)  # a no-op in a forked worker: the supervisor has
    listening = [sock.getsockname()[:2]] if sock is not None else [(host, port)] if host and port else []
    app = build_app(config, egress_sock=egress_sock, listening=listening)

    async def settle(_: web.Application) -> None:
        tune_runtime(config.server)  # the last start-up hook: everything long-lived exists by now
        if any(signum in STOP_SIGNALS for signum in early):
            os.kill(os.getpid(), signal.SIGTERM)  # aiohttp's handler is in place by now

    async def stopping(_: web.Application) -> None:
        # One stop is enough: a second SIGTERM or SIGINT (Ctrl-C reaches the whole process group, the
        # supervisor forwards too) would make aiohttp abandon the drain. The watchdog bounds the wait.
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
            signal.signal(signum, signal.SIG_IGN)
        arm_exit_watchdog(config.server)

    app.on_startup.append(settle)
    app.on_shutdown.append(stopping)  # the first hook a SIGTERM runs
    log.info("worker_started", pid=os.getpid(), host=host, port=port if sock is None else sock.getsockname()[1])
    web.run_app(
        app,
        host=None if sock is not None else host,
        port=None if sock is not None else port,
        sock=sock,
        shutdown_timeout=config.server.drain_timeout_s,
        keepalive_timeout=config.server.keepalive_timeout_s,
        # A client that disconnects cancels its handler, and with it the upstream request.
        handler_cancellation=True,
        access_log=None,
        print=None,
        backlog=1024,
    )


def forget_metrics_of(pid: int | None, multiprocess_dir: str | None) -> None:
    """A dead worker's live gauges (in flight, policy revision) would otherwise keep their last values."""
    if pid and multiprocess_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=1024, reuse_port=False)
    sock.set_inheritable(True)
    return sock


def run_supervisor(config: Config, host: str, port: int, workers: int) -> int:
    """Fork `workers` processes that accept on one socket; forward signals; restart crashed workers.

    Returns 0 once every worker has exited cleanly after SIGTERM/SIGINT, 1 if one did not (it failed, or
    outlived its own exit watchdog and was killed)."""
    configure_logging(config.telemetry.log_level)
    sock = bind(host, port)
    # The egress listener is shared the same way: bound once here, accepted on by every worker.
    egress_sock = bind(config.egress.host, config.egress.port) if config.egress.enabled else None
    load_token_tables(config)  # before the fork: every worker shares them
    context = multiprocessing.get_context("fork")
    stopping = False
    stop_deadline = 0.0
    escalation = [signal.SIGABRT, signal.SIGKILL]
    children: list[BaseProcess] = []

    def start() -> BaseProcess:
        process = context.Process(target=run_worker, args=(config, sock), kwargs={"egress_sock": egress_sock},
                                  daemon=False)
        # Blocked across the fork: the child must not run this process's handlers (see run_worker).
        signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)
        return process

    def send(child: BaseProcess, signum: int) -> None:
        if child.pid and child.is_alive():
            with contextlib.suppress(ProcessLookupError):  # it may have exited a moment ago
                os.kill(child.pid, signum)

    def forward(signum: int, _: FrameType | None) -> None:
        nonlocal stopping, stop_deadline
        if signum in STOP_SIGNALS:
            if stopping:
                return  # the workers are draining already; a second signal would cut their drain short
            stopping = True
            # A backstop behind each worker's own watchdog, for a worker too wedged to run it.
            stop_deadline = time.monotonic() + config.server.drain_timeout_s + config.server.exit_grace_s + 5
        for child in children:
            send(child, signal.SIGTERM if signum in STOP_SIGNALS else signum)

    for signum in HANDLED_SIGNALS:
        signal.signal(signum, forward)
    children.extend(start() for _ in range(workers))
    log.info("supervisor_started", pid=os.getpid(), workers=workers, port=sock.getsockname()[1])
    while True:
        alive = [c for c in children if c.is_alive()]
        if stopping and not alive:
            break
        if stopping and escalation and time.monotonic() > stop_deadline:
            # SIGABRT first: faulthandler prints the stuck worker's stacks; SIGKILL if even that fails.
            signum = escalation.pop(0)
            for child in alive:
                log.error("worker_stop_timeout", pid=child.pid, signal=signum.name)
                send(child, signum)
            stop_deadline = time.monotonic() + 2
        for i, child in enumerate(children):
            if stopping or child.is_alive():
                continue
            log.error("worker_died", pid=child.pid, exitcode=child.exitcode)
            forget_metrics_of(child.pid, config.telemetry_env.prometheus_multiproc_dir)
            time.sleep(0.5)
            if not stopping:
                children[i] = start()
                if stopping:  # the stop arrived while it was being started, and was not sent to it
                    send(children[i], signal.SIGTERM)
        time.sleep(0.2)
    sock.close()
    failed = [child.pid for child in children if child.exitcode != 0]
    if failed:
        log.error("supervisor_stopped", failed_workers=failed)
        return 1
    log.info("supervisor_stopped")
    return 0
