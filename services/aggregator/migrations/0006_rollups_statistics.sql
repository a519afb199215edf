-- The planner's view of which metrics, periods and dimensions go together. Left to itself it takes
-- metric, period and dim as independent and guesses a few dozen rows where a district's year of days
-- to settle is 46,000 (bench/bench_dashboard.py): it then sorts on disk where a hash would do, and the
-- dashboard's median took 65 ms instead of 43. Statistics of the three together (the common
-- combinations and how one follows from the others) give it the true proportions.
CREATE STATISTICS rollups_shape (mcv, dependencies) ON metric, period, dim FROM rollups;
ANALYZE rollups;
