-- Post-deploy T-SQL of stack dev: run by sql-bootstrap-tsql as the SQL
-- server's Entra admin in database sensors on sql-batchscore-dev-dujh9a.database.windows.net.
-- Offline plan: names and client ids come from the mocks. Every batch is idempotent.
IF OBJECT_ID(N'dbo.SensorReadings', N'U') IS NULL
CREATE TABLE dbo.SensorReadings (
    TS datetime2 NOT NULL,
    Device nvarchar(64) NOT NULL,
    Sensor nvarchar(64) NOT NULL,
    Value float NULL,
    MinValue float NULL,
    MaxValue float NULL,
    Count int NULL,
    CONSTRAINT PK_SensorReadings PRIMARY KEY (Device, Sensor, TS)
);
GO
IF NOT EXISTS (SELECT 1 FROM sys.key_constraints WHERE parent_object_id = OBJECT_ID(N'dbo.SensorReadings') AND type = N'PK')
ALTER TABLE dbo.SensorReadings ADD CONSTRAINT PK_SensorReadings PRIMARY KEY (Device, Sensor, TS);
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'dbo.SensorReadings') AND name = N'IX_SensorReadings_TS')
CREATE INDEX IX_SensorReadings_TS ON dbo.SensorReadings (TS) INCLUDE (Value, MinValue, MaxValue, Count);
GO
IF EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'stream-jobbf28d686' AND sid <> 0xDAF04E6EFD88E050B15FBD1B9CA1474D)
DROP USER [stream-jobbf28d686];
GO
IF NOT EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'stream-jobbf28d686')
CREATE USER [stream-jobbf28d686] WITH SID = 0xDAF04E6EFD88E050B15FBD1B9CA1474D, TYPE = E;
GO
IF EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'ml-cluster-identity7d09b3a1' AND sid <> 0x5350BC05C1E9F952988397B2ACAEAEAE)
DROP USER [ml-cluster-identity7d09b3a1];
GO
IF NOT EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'ml-cluster-identity7d09b3a1')
CREATE USER [ml-cluster-identity7d09b3a1] WITH SID = 0x5350BC05C1E9F952988397B2ACAEAEAE, TYPE = E;
GO
GRANT SELECT, INSERT ON OBJECT::dbo.SensorReadings TO [stream-jobbf28d686];
GO
GRANT SELECT ON OBJECT::dbo.SensorReadings TO [ml-cluster-identity7d09b3a1];
GO
