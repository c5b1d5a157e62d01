"""The Management API (`/api/v1/manage/…`, Enterprise, `seg_mgmt_` keys)."""
