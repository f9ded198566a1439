"""GENERATED protobuf and gRPC code for protos/fero/v1; regenerate with `make proto`.

Only this file is written by hand: it makes fero/v1 a regular package.
"""
