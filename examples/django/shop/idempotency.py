"""Idempotency-Key for Django: the view's ORM writes, the key and the answer
commit in one transaction (idem_begin / idem_finish); a retry gets the stored
answer and the view does not run."""
import json

from django.db import DatabaseError, connection, transaction
from django.http import HttpResponse, JsonResponse


class IdempotencyKeyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return self.get_response(request)
        fingerprint = {"method": request.method, "path": request.path, "body": request.body.decode()}
        try:
            with transaction.atomic(), connection.cursor() as cur:
                # SET LOCAL only: behind PgBouncer, SET would stay on the server connection
                cur.execute("SELECT set_config('idempotency.tenant', %s, true), set_config('idempotency.wait', 'off', true)",
                            [request.headers.get("X-Account", "")])  # stand-in for your authenticated account
                cur.execute("SELECT idem_begin(%s, %s::jsonb)::text", [key, json.dumps(fingerprint)])
                stored = cur.fetchone()[0]  # Django hands jsonb over as text
                if stored is not None:
                    stored = json.loads(stored)
                    response = HttpResponse(stored["body"], status=stored["status"], content_type=stored["type"])
                    response["Idempotent-Replayed"] = "true"
                    return response
                response = self.get_response(request)
                if response.status_code >= 500:  # unexpected failure: roll back, the retry runs again
                    transaction.set_rollback(True)
                    return response
                answer = {"status": response.status_code, "type": response["Content-Type"],
                          "body": response.content.decode()}  # replayed byte for byte
                cur.execute("SELECT idem_finish(%s, %s::jsonb)", [key, json.dumps(answer)])
                return response
        except DatabaseError as e:
            cause = e.__cause__  # the driver's error: psycopg2 (Django 3.2) or psycopg 3
            sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
            if sqlstate == "IK001":
                return JsonResponse({"error": "Idempotency-Key reused for another request"}, status=422)
            if sqlstate == "IK002":
                return JsonResponse({"error": "this request is in progress; retry later"}, status=409)
            raise
