"""Where the agent runs: registered backends (cpu, cuda, ssh) by device string.

Heavy or optional libraries (paramiko, CUDA) are imported by the backend
module that needs them, and that module is imported only when its device is
asked for.
"""
