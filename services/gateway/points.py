"""The points service's one route that is not one JSON reply (declared in services/points/api.py):
the year's evaluation, which answers a CSV download when asked for format=csv."""
import re

from werkzeug.wrappers import Response

from services.gateway.http import api
from services.gateway.routes import reply
from services.points.api import EVALUATION
from shared.errors import load

UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


class PointsRoutes:

    @api(EVALUATION.method, EVALUATION.path)
    def point_evaluation(self, request):
        query = request.args.to_dict()
        codes, field = EVALUATION.codes({}, query)
        principal = self._principal(request, EVALUATION.permission, *codes, field=field)
        load(EVALUATION.query, query)
        result = self._call(EVALUATION.rpc, query, self._caller(principal), service=EVALUATION.service)
        if "csv" not in result:
            return reply(EVALUATION, result)
        # The name goes into a header: keep it to characters that need no quoting in any browser.
        filename = UNSAFE_FILENAME.sub("_", result.get("filename") or "points-evaluation.csv")
        return Response(result["csv"], content_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
