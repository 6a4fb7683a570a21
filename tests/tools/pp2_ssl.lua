-- HAProxy keeps the PROXY v2 SSL TLV (0x20) as raw bytes: one byte of
-- client flags, four of verify result, then sub-TLVs (type, 16-bit length,
-- value). pp2_ssl(type) returns the value of the first sub-TLV of that type.
core.register_fetches("pp2_ssl", function(txn, want)
	local v = txn.f:fc_pp_tlv("SSL")
	if v == nil or #v < 5 then
		return nil
	end
	want = tonumber(want)
	local i = 6
	while i + 2 <= #v do
		local t = v:byte(i)
		local len = v:byte(i + 1) * 256 + v:byte(i + 2)
		if i + 2 + len > #v then
			return nil
		end
		if t == want then
			return v:sub(i + 3, i + 2 + len)
		end
		i = i + 3 + len
	end
	return nil
end)
