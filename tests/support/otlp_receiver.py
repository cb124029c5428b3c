"""A loopback OTLP/HTTP metrics receiver that decodes every request with the
official OpenTelemetry protobuf definitions (the `opentelemetry-proto`
package), for the tests.

usage: otlp_receiver.py

Prints `port <N>` once listening on 127.0.0.1, then one JSON line per request:
    {"status": <code it answered>, "encoding": "<content-encoding>",
     "request": <ExportMetricsServiceRequest as JSON, or null when refused>}
Commands on stdin, one per line:
    fail <N>      answer the next N requests 503 with Retry-After: 1
    flaky <N>     answer the next N requests 503 without Retry-After
    partial <N>   answer the next request 200 with partial_success rejecting N points
"""
import gzip
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

state = {"fail": 0, "flaky": 0, "partial": 0}
lock = threading.Lock()


def emit(record):
    with lock:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        encoding = self.headers.get("Content-Encoding", "")
        with lock:
            failing = state["fail"] > 0
            if failing:
                state["fail"] -= 1
            flaky = not failing and state["flaky"] > 0
            if flaky:
                state["flaky"] -= 1
            partial, state["partial"] = state["partial"], 0
        if failing or flaky:
            emit({"status": 503, "encoding": encoding, "request": None})
            self.send_response(503)
            if failing:
                self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if encoding == "gzip":
            body = gzip.decompress(body)
        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        response = ExportMetricsServiceResponse()
        if partial:
            response.partial_success.rejected_data_points = partial
            response.partial_success.error_message = "test rejected some points"
        payload = response.SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        emit({"status": 200, "encoding": encoding, "path": self.path,
              "content_type": self.headers.get("Content-Type", ""),
              "tenant": self.headers.get("x-tenant", ""),
              "request": MessageToDict(request, preserving_proto_field_name=True)})


def commands():
    for line in sys.stdin:
        parts = line.split()
        if len(parts) == 2 and parts[0] in state:
            with lock:
                state[parts[0]] = int(parts[1])


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    emit({"port": server.server_address[1]})
    threading.Thread(target=commands, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
