"""The points service's one route that is not one JSON reply (declared in services/points/api.py):
the year's evaluation, which answers a CSV download when asked for format=csv."""
from services.gateway.http import api, csv_download
from services.gateway.routes import reply
from services.points.api import EVALUATION
from shared.errors import load


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
        return csv_download(result["csv"], result.get("filename") or "points-evaluation.csv")
