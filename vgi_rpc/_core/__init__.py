"""The pure core of vgi_rpc: types, wire messages and call state machines.

Imports only the standard library and pyarrow; opens no file, socket, thread or process.
"""
