"""The sandbox every terminal command (and every skill script run through it) runs in.

    backend = choose_backend("auto")          # bubblewrap, else Landlock, else a refusal saying why
    result = await run_sandboxed(backend, SandboxSpec(workspace=ws, env={...}), ["/bin/bash", "-c", cmd],
                                 timeout=60, max_output_chars=20_000)

`policy` says what a command may touch and which backend this machine can give it; `runner`
builds the bubblewrap or Landlock invocation and runs it; `launch` is the tiny standard-library
launcher that sets resource limits and the Landlock ruleset before it execs the command.
"""
