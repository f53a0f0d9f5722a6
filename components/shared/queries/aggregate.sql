-- Stream Analytics query of batchscore (rendered by components/shared/stream_query.py for
-- the job of components/stream_processing.py).
-- Placeholders: $input, $output, $timestamp_field, $window_minutes.
-- One row per (Device, Sensor) and tumbling window of $window_minutes minutes: the window
-- covers (start, end] and System.Timestamp() is its end, the TS of dbo.SensorReadings.
-- Events whose Value is not a number are left out instead of stopping the job.
SELECT
    System.Timestamp() AS [TS],
    CAST([Device] AS nvarchar(max)) AS [Device],
    CAST([Sensor] AS nvarchar(max)) AS [Sensor],
    AVG(TRY_CAST([Value] AS float)) AS [Value],
    MIN(TRY_CAST([Value] AS float)) AS [MinValue],
    MAX(TRY_CAST([Value] AS float)) AS [MaxValue],
    COUNT(*) AS [Count]
INTO
    [$output]
FROM
    [$input] TIMESTAMP BY [$timestamp_field]
WHERE
    [Device] IS NOT NULL
    AND [Sensor] IS NOT NULL
    AND TRY_CAST([Value] AS float) IS NOT NULL
GROUP BY
    [Device],
    [Sensor],
    TumblingWindow(minute, $window_minutes)
