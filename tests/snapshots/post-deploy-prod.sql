-- Post-deploy T-SQL of stack prod: run by sql-bootstrap-tsql as the SQL
-- server's Entra admin in database sensors on sql-batchscore-prod-yxz0jy.database.windows.net.
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
IF EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'stream-joba16661c4' AND sid <> 0xCFBF6EE5D37A3F5D91352E34BBF97E3A)
DROP USER [stream-joba16661c4];
GO
IF NOT EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'stream-joba16661c4')
CREATE USER [stream-joba16661c4] WITH SID = 0xCFBF6EE5D37A3F5D91352E34BBF97E3A, TYPE = E;
GO
IF EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'ml-cluster-identity4708d468' AND sid <> 0x54E7BE31ADB59558B27B4B4A29F648D0)
DROP USER [ml-cluster-identity4708d468];
GO
IF NOT EXISTS (SELECT 1 FROM sys.database_principals WHERE name = N'ml-cluster-identity4708d468')
CREATE USER [ml-cluster-identity4708d468] WITH SID = 0x54E7BE31ADB59558B27B4B4A29F648D0, TYPE = E;
GO
GRANT SELECT, INSERT ON OBJECT::dbo.SensorReadings TO [stream-joba16661c4];
GO
GRANT SELECT ON OBJECT::dbo.SensorReadings TO [ml-cluster-identity4708d468];
GO
