-- One database per Linli instance (DESIGN.md section 1), created when the PostgreSQL volume is
-- first initialised (the image runs /docker-entrypoint-initdb.d/* only on an empty data directory).
-- Each instance's setup job then applies the migrations to its own database.
CREATE DATABASE linli_district_310110;
CREATE DATABASE linli_street_310110012;
CREATE DATABASE linli_street_310110013;
