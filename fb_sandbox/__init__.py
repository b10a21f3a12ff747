"""The embedded Graph / Marketing API sandbox: see docs/sandbox.md. Entry points: fb_sandbox.server."""
