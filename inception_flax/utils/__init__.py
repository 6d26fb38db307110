"""What every layer shares: `files` (atomic writes and file locks), `cli` (the command-line
conventions and exit codes), `disk` (a full or read-only disk in one sentence), `malloc`
(TCMalloc for the entry points), `compat` (every old name kept, with its date).

May import: the standard library and absl only; nothing of the other layers.
"""
