-- lakesql quickstart: Delta tables, updates, time travel and history.
-- Run from the repository root:  lakesql run sql/examples/quickstart.sql
-- Data: the UCI wine data set as bundled with scikit-learn (178 wines, 3 cultivars),
-- exported to sql/examples/data/wine.csv with an id and a measurement time.

CREATE SCHEMA IF NOT EXISTS lab;

-- 1. Load a CSV into a Delta table (one commit).
CREATE OR REPLACE TABLE lab.wine COMMENT 'UCI wine measurements' AS
SELECT * FROM read_csv('sql/examples/data/wine.csv');

DESCRIBE lab.wine;

-- 2. Plain DuckDB SQL over it.
SELECT cultivar, count(*) AS wines, round(avg(alcohol), 2) AS avg_alcohol
FROM lab.wine GROUP BY ALL ORDER BY ALL;

-- 3. Change it: every statement below is one Delta commit carrying its SQL.
UPDATE lab.wine SET color_intensity = round(color_intensity * 1.1, 4) WHERE cultivar = 'cultivar_2';
DELETE FROM lab.wine WHERE proline < 300;
INSERT INTO lab.wine BY NAME
SELECT 1000 AS wine_id, 'cultivar_1' AS cultivar, TIMESTAMP '2024-03-01 12:00:00' AS measured_at,
       12.5 AS alcohol, 2.0 AS malic_acid, 2.3 AS ash, 19.0 AS alcalinity_of_ash, 95.0 AS magnesium,
       2.2 AS total_phenols, 2.0 AS flavanoids, 0.35 AS nonflavanoid_phenols, 1.6 AS proanthocyanins,
       3.2 AS color_intensity, 1.05 AS hue, 2.8 AS od280_od315, 520.0 AS proline;

CREATE OR REPLACE TABLE lab.cultivar_names AS
SELECT * FROM (VALUES ('cultivar_0', 'Barolo'), ('cultivar_1', 'Grignolino'), ('cultivar_2', 'Barbera'))
    AS v(cultivar, grape);

MERGE INTO lab.wine AS w
USING (SELECT 1000 AS wine_id, 13.0 AS alcohol) AS fix
ON w.wine_id = fix.wine_id
WHEN MATCHED THEN UPDATE SET alcohol = fix.alcohol;

-- 4. Time travel: compare the newest version with the first one.
SELECT n.grape,
       count(*) AS wines_now,
       (SELECT count(*) FROM lab.wine VERSION AS OF 0 AS v0 WHERE v0.cultivar = n.cultivar) AS wines_v0,
       round(avg(w.color_intensity), 3) AS color_now
FROM lab.wine AS w JOIN lab.cultivar_names AS n USING (cultivar)
GROUP BY ALL ORDER BY ALL;

-- 5. The table's history: one row per commit, with the statement that made it.
DESCRIBE HISTORY lab.wine;

-- 6. A feature table: per cultivar, the running averages known at each measurement.
--    The one stored query serves training and inference alike.
CREATE OR REPLACE FEATURE TABLE lab.cultivar_profile
    PRIMARY KEY (cultivar)
    TIMESTAMP KEY (measured_at)
    TTL INTERVAL 30 DAYS
    COMMENT 'running means per cultivar, as known at each measurement'
AS SELECT cultivar, measured_at,
          round(avg(alcohol) OVER w, 3) AS cultivar_avg_alcohol,
          round(avg(color_intensity) OVER w, 3) AS cultivar_avg_color,
          count(*) OVER w AS cultivar_samples
   FROM lab.wine
   WINDOW w AS (PARTITION BY cultivar ORDER BY measured_at);

SHOW FEATURE TABLES;

-- 7. Point-in-time lookup: each tasting sees only what was known at its own time.
SELECT * FROM ML.FEATURES_AT_TIME(
    (SELECT * FROM (VALUES ('cultivar_0', TIMESTAMP '2024-01-03 00:00:00'),
                           ('cultivar_0', TIMESTAMP '2024-02-15 00:00:00'),
                           ('cultivar_2', TIMESTAMP '2024-01-03 00:00:00'),
                           ('cultivar_2', TIMESTAMP '2024-02-15 00:00:00'))
        AS tastings(cultivar, tasted_at)),
    FEATURES lab.cultivar_profile,
    time_column => 'tasted_at')
ORDER BY cultivar, tasted_at;

-- 8. A new measurement arrives: REFRESH recomputes the definition and upserts in one version.
INSERT INTO lab.wine BY NAME
SELECT 1001 AS wine_id, 'cultivar_0' AS cultivar, TIMESTAMP '2024-03-02 08:00:00' AS measured_at,
       14.1 AS alcohol, 1.9 AS malic_acid, 2.4 AS ash, 16.0 AS alcalinity_of_ash, 110.0 AS magnesium,
       2.9 AS total_phenols, 3.1 AS flavanoids, 0.3 AS nonflavanoid_phenols, 2.0 AS proanthocyanins,
       5.9 AS color_intensity, 1.0 AS hue, 3.2 AS od280_od315, 1100.0 AS proline;
REFRESH FEATURE TABLE lab.cultivar_profile;
DESCRIBE FEATURE TABLE lab.cultivar_profile;

-- 9. AutoML: which cultivar is a wine? (FLAML over xgboost, lightgbm and scikit-learn models,
--    plus scikit-learn's default HistGradientBoosting; the Delta versions read are recorded.)
TRAIN AUTOML cultivar_model PREDICT cultivar FROM lab.wine
    OPTIONS (time_budget = 10, exclude = ['wine_id', 'measured_at'], metric = 'accuracy');

SHOW VERSIONS IN MODEL cultivar_model;

-- 10. Measure it on its held-out test split, with bootstrap 95% intervals.
SELECT metric, round(value, 4) AS value, round(ci_low, 4) AS ci_low, round(ci_high, 4) AS ci_high
FROM ML.EVALUATE(MODEL cultivar_model);

-- 11. Score rows inside SQL, explain them, and keep the scores in a Delta table.
SELECT wine_id, cultivar, predicted_cultivar
FROM ML.PREDICT(MODEL cultivar_model, (SELECT * FROM lab.wine WHERE wine_id % 40 = 0))
ORDER BY wine_id;

SELECT wine_id, predicted_cultivar, top_feature_attributions
FROM ML.EXPLAIN_PREDICT(MODEL cultivar_model, (SELECT * FROM lab.wine WHERE wine_id IN (1, 100)),
                        top_k_features => 2);

PREDICT cultivar_model FROM lab.wine INTO lab.wine_scores MODE MERGE ON (wine_id);
SELECT predicted_cultivar, count(*) AS wines FROM lab.wine_scores GROUP BY ALL ORDER BY ALL;
